-- userdb: delta sync. A server change log, pulls by delta, Broadcast of every change,
-- and bounded exactly-once bookkeeping.
--
-- Runs after 20261127000000_userdb.sql (which stays as deployed), on hosted Supabase, on
-- `supabase start`, and on plain PostgreSQL (15+) or PGlite after
-- src/devserver/sql/bootstrap.sql. Safe to run twice. Upgrades a live database in place:
-- documents, tokens and the `clients` bookkeeping are kept as they are; old clients keep
-- working (`userdb_pull(since)`, `userdb_patch`, the `postgres_changes` feed).
--
-- Contract (changes to the first migration's):
--
--   userdb_pull(since timestamptz = null, delta boolean = false) -> jsonb
--       null                                  no document, or nothing newer than since
--       {db, updated_at}                      the whole document
--       {changes: [{before, after, ops, client_id, batch_seq}, {after, ops, ...}, ...],
--        updated_at}                          with delta, when the log holds an unbroken
--                                             chain of known changes from since to the
--                                             current token, smaller than the document;
--                                             oldest first, `before` only on the first
--                                             (each other's is the previous `after`)
--   userdb_patch(...)                         also 22023 when client_id is not 1 to 128
--                                             characters; `clients` counts in the size limit
--
-- Change log: userdb.changes, one entry per committed update of a user's row, written
-- by a trigger in the same transaction. `ops` are the RFC 6902 ops the RPC applied
-- (userdb_patch: the batch; userdb_set: the equivalent add/replace, or [] when jsonb_set
-- changes nothing); null ("reset") for any other write (a direct UPDATE through the Data
-- API, a service_role script, a restore). Owners may read their entries; nobody may
-- write them through the API. Pruned on every write, per user, by age
-- (userdb.log_max_age(), 30 days) and by bytes (userdb.log_max_bytes(), 2 MiB).
--
-- Broadcast: every logged change is sent with realtime.send(payload, 'change',
-- 'userdb:' || user_id, true) (a private channel), payload
-- {before, after, client_id, batch_seq, ops} with ops null for a reset or when its JSON
-- is over userdb.broadcast_max_bytes() (32 KiB). Users receive only their own topic (a
-- SELECT policy on realtime.messages); nobody may send on it (no INSERT policy). Skipped,
-- with a NOTICE, where the `realtime` schema does not exist.

-- Settings (redefine in a later migration to change) ----------------------------------

create or replace function userdb.log_max_age()
returns interval
language sql
immutable
parallel safe
set search_path = ''
as $$ select interval '30 days' $$;

comment on function userdb.log_max_age() is
  'Change log retention by age, per user. Redefine to change it.';

create or replace function userdb.log_max_bytes()
returns bigint
language sql
immutable
parallel safe
set search_path = ''
as $$ select 2097152::bigint $$;

comment on function userdb.log_max_bytes() is
  'Change log retention by bytes (JSON text of the entries), per user. An entry larger than this is logged as a reset. Redefine to change it.';

create or replace function userdb.broadcast_max_bytes()
returns bigint
language sql
immutable
parallel safe
set search_path = ''
as $$ select 32768::bigint $$;

comment on function userdb.broadcast_max_bytes() is
  'Broadcasts carry the ops of a change up to this many bytes of JSON, else only its tokens. Redefine to change it.';

create or replace function userdb.client_id_max_length()
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$ select 128 $$;

comment on function userdb.client_id_max_length() is
  'Longest client_id userdb_patch accepts (characters).';

create or replace function userdb.clients_max_age()
returns interval
language sql
immutable
parallel safe
set search_path = ''
as $$ select interval '400 days' $$;

comment on function userdb.clients_max_age() is
  'Exactly-once entries of clients not seen for this long are pruned (when a new client id is recorded). Redefine to change it.';

create or replace function userdb.clients_max_count()
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$ select 1000 $$;

comment on function userdb.clients_max_count() is
  'At most this many exactly-once entries per document: the least recently seen go first. Redefine to change it.';

-- The change log ----------------------------------------------------------------------

create table if not exists userdb.changes (
  user_id uuid not null references public.user_databases (user_id) on delete cascade on update cascade,
  id bigint generated always as identity,
  before timestamptz not null,
  after timestamptz not null,
  ops jsonb,
  client_id text,
  batch_seq bigint,
  bytes bigint not null,
  total bigint not null,
  created_at timestamptz not null default clock_timestamp(),
  primary key (user_id, id),
  constraint changes_after_unique unique (user_id, after),
  constraint changes_ops_shape check (ops is null or jsonb_typeof(ops) = 'array')
);

comment on table userdb.changes is
  'userdb change log: one entry per committed update of a user''s row (ops null = reset: unknown change). Written by a trigger only.';
comment on column userdb.changes.before is 'The row''s updated_at before the change.';
comment on column userdb.changes.after is 'The row''s updated_at after the change.';
comment on column userdb.changes.ops is 'RFC 6902 ops applied, or null (reset) when the change is not known.';
comment on column userdb.changes.bytes is 'Size of the entry as JSON text, as userdb_pull answers it.';
comment on column userdb.changes.total is 'Running sum of bytes over the user''s entries (for pruning).';

alter table userdb.changes enable row level security;
revoke all on table userdb.changes from public, anon, authenticated, service_role;
grant select on table userdb.changes to authenticated, service_role;

drop policy if exists "owner reads" on userdb.changes;
create policy "owner reads" on userdb.changes
  for select to authenticated
  using ((select auth.uid()) = user_id);

-- Size limit: the document and its exactly-once bookkeeping ---------------------------

-- Raises PT413 when the row (document + clients) is larger than userdb.max_bytes().
create or replace function userdb.check_row_size(doc jsonb, clients jsonb, fn text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_size bigint := pg_column_size(doc) + coalesce(pg_column_size(clients), 0);
begin
  if v_size > userdb.max_bytes() then
    raise exception using
      errcode = 'PT413',
      message = format('%s: the document and its client bookkeeping would be %s bytes, over the limit of %s bytes',
                       fn, v_size, userdb.max_bytes()),
      hint = 'Delete data, or raise the limit by redefining userdb.max_bytes().';
  end if;
end
$$;

-- Row trigger (replaces the first migration's): strictly increasing updated_at, size
-- limit of document + clients for every write path.
create or replace function userdb.before_write()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.updated_at := clock_timestamp();
  else
    new.updated_at := greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
  end if;
  -- For an unchanged, already stored value this is its compressed size, which is never
  -- above the size it was admitted with.
  perform userdb.check_row_size(new.db, new.clients, 'user_databases');
  return new;
end
$$;

-- The client bookkeeping --------------------------------------------------------------
-- clients maps a client id to [last batch_seq applied, last seen (unix seconds)]. Entries
-- written by the first migration are a bare batch_seq; they are read the same way and get
-- the current time as last seen the first time the map is pruned.

-- The last batch_seq recorded in a clients entry (either form), or null.
create or replace function userdb.client_seq(entry jsonb)
returns bigint
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case jsonb_typeof(entry)
           when 'array' then (entry ->> 0)::bigint
           when 'number' then (entry #>> '{}')::bigint
         end
$$;

-- clients without the entries not seen for userdb.clients_max_age(), and at most
-- userdb.clients_max_count() entries (the most recently seen).
create or replace function userdb.prune_clients(clients jsonb, now_s bigint)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(s.key, s.entry), '{}'::jsonb)
    from (select e.key, v.entry
            from jsonb_each(clients) as e(key, value)
            cross join lateral (
              select case when jsonb_typeof(e.value) = 'array' then e.value
                          else jsonb_build_array(userdb.client_seq(e.value), now_s) end as entry
            ) as v
           where (v.entry ->> 1)::bigint >= now_s - extract(epoch from userdb.clients_max_age())::bigint
           order by (v.entry ->> 1)::bigint desc, e.key
           limit userdb.clients_max_count()) as s
$$;

-- The log trigger and Broadcast -----------------------------------------------------------

-- The RPCs put what they are about to write in the transaction-local setting
-- userdb.pending ({user_id, before, ops, client_id, batch_seq}); the trigger takes it
-- (once) when it names this very transition (same user, same token before), and
-- otherwise logs a reset. The setting is not reachable through the Data API (PostgREST
-- runs one statement per request and sets only request.* settings).
create or replace function userdb.log_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_pending jsonb;
  v_ops jsonb := null;
  v_client text := null;
  v_seq bigint := null;
  v_entry jsonb;
  v_bytes bigint;
  v_ops_bytes bigint := 0;
  v_total bigint;
  v_first record;
  v_keep bigint;
  v_send regprocedure;
begin
  v_pending := nullif(pg_catalog.current_setting('userdb.pending', true), '')::jsonb;
  if v_pending is not null then
    perform pg_catalog.set_config('userdb.pending', '', true);
    if (v_pending ->> 'user_id')::uuid = new.user_id
       and (v_pending ->> 'before')::timestamptz = old.updated_at
       and jsonb_typeof(v_pending -> 'ops') = 'array' then
      v_ops := v_pending -> 'ops';
      v_client := v_pending ->> 'client_id';
      v_seq := (v_pending ->> 'batch_seq')::bigint;
    end if;
  end if;

  v_entry := jsonb_build_object('before', old.updated_at, 'after', new.updated_at, 'ops', v_ops,
                                'client_id', v_client, 'batch_seq', v_seq);
  v_bytes := octet_length(v_entry::text);
  if v_ops is not null and v_bytes > userdb.log_max_bytes() then
    -- Too large to keep: a reset keeps the chain continuous.
    v_ops := null;
    v_entry := jsonb_set(v_entry, '{ops}', 'null');
    v_bytes := octet_length(v_entry::text);
  end if;
  if v_ops is not null then
    v_ops_bytes := octet_length(v_ops::text);
  end if;

  select c.total into v_total
    from userdb.changes c
   where c.user_id = new.user_id
   order by c.id desc
   limit 1;
  v_total := coalesce(v_total, 0) + v_bytes;
  insert into userdb.changes (user_id, before, after, ops, client_id, batch_seq, bytes, total)
  values (new.user_id, old.updated_at, new.updated_at, v_ops, v_client, v_seq, v_bytes, v_total);

  -- Prune: drop the oldest entries past the age or the bytes of the retention (the bytes
  -- of an entry and all newer ones, total - (c.total - c.bytes)). Tokens and totals
  -- increase with id, so the entries to drop are a prefix; the newest entry is always kept.
  select c.id, c.after, c.total - c.bytes as since_total into v_first
    from userdb.changes c
   where c.user_id = new.user_id
   order by c.id
   limit 1;
  if v_first.after < new.updated_at - userdb.log_max_age()
     or v_first.since_total < v_total - userdb.log_max_bytes() then
    select c.id into v_keep
      from userdb.changes c
     where c.user_id = new.user_id
       and c.after >= new.updated_at - userdb.log_max_age()
       and c.total - c.bytes >= v_total - userdb.log_max_bytes()
     order by c.id
     limit 1;
    delete from userdb.changes c
     where c.user_id = new.user_id
       and c.id < coalesce(v_keep, (select max(k.id) from userdb.changes k where k.user_id = new.user_id));
  end if;

  -- Broadcast (where the realtime schema exists and may be used).
  v_send := pg_catalog.to_regprocedure('realtime.send(jsonb,text,text,boolean)');
  if v_send is not null and pg_catalog.has_function_privilege(v_send, 'execute') then
    if v_ops_bytes > userdb.broadcast_max_bytes() then
      v_entry := jsonb_set(v_entry, '{ops}', 'null');
    end if;
    perform realtime.send(v_entry, 'change', 'userdb:' || new.user_id::text, true);
  end if;
  return null;
end
$$;

comment on function userdb.log_change() is
  'After each update of user_databases: logs the change (ops from the RPC, else a reset), prunes the user''s log, broadcasts the change on the private topic userdb:<user_id>.';

drop trigger if exists user_databases_log_change on public.user_databases;
create trigger user_databases_log_change
  after update on public.user_databases
  for each row execute function userdb.log_change();

-- Broadcast authorization: a user may join (receive on) their own private topic only.
-- There is deliberately no INSERT policy: nobody may send on a userdb topic.
do $userdb$
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    raise notice 'userdb: no realtime.messages (not Supabase, no dev bootstrap): changes are logged but not broadcast';
  else
    execute 'drop policy if exists "userdb: owner receives own changes" on realtime.messages';
    execute $policy$
      create policy "userdb: owner receives own changes" on realtime.messages
        for select to authenticated
        using (extension = 'broadcast' and (select realtime.topic()) = 'userdb:' || (select auth.uid())::text)
    $policy$;
  end if;
end
$userdb$;

-- userdb_set: the equivalent ops -------------------------------------------------------

-- The RFC 6902 ops equivalent to jsonb_set(doc, path, value, true) (an empty path: the
-- whole document replaced, path ''), or [] when that jsonb_set changes nothing (a missing
-- or scalar parent). Array indexes are resolved as jsonb_set does (negative from the
-- end; past the end appends; before the start prepends).
create or replace function userdb.set_ops(doc jsonb, path text[], value jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  n integer := cardinality(path);
  v_ptr text := '';
  v_tok text;
  v_type text;
  v_len integer;
  v_idx integer;
begin
  if n = 0 then
    return jsonb_build_array(jsonb_build_object('op', 'replace', 'path', '', 'value', value));
  end if;
  for i in 1 .. n loop
    v_tok := path[i];
    v_type := jsonb_typeof(doc #> path[1:i - 1]);
    if v_type = 'object' then
      if i = n then
        return jsonb_build_array(jsonb_build_object(
          'op', case when (doc #> path[1:i - 1]) ? v_tok then 'replace' else 'add' end,
          'path', v_ptr || '/' || replace(replace(v_tok, '~', '~0'), '/', '~1'),
          'value', value));
      end if;
      if not ((doc #> path[1:i - 1]) ? v_tok) then
        return '[]';
      end if;
      v_ptr := v_ptr || '/' || replace(replace(v_tok, '~', '~0'), '/', '~1');
    elsif v_type = 'array' then
      -- (jsonb_set has already rejected a token that is not an integer)
      v_len := jsonb_array_length(doc #> path[1:i - 1]);
      v_idx := btrim(v_tok)::integer;
      if v_idx < 0 then
        v_idx := v_idx + v_len;
      end if;
      if i = n then
        if v_idx >= v_len then
          return jsonb_build_array(jsonb_build_object('op', 'add', 'path', v_ptr || '/-', 'value', value));
        elsif v_idx < 0 then
          return jsonb_build_array(jsonb_build_object('op', 'add', 'path', v_ptr || '/0', 'value', value));
        end if;
        return jsonb_build_array(jsonb_build_object('op', 'replace', 'path', v_ptr || '/' || v_idx, 'value', value));
      end if;
      if v_idx < 0 or v_idx >= v_len then
        return '[]';
      end if;
      path[i] := v_idx::text;
      v_ptr := v_ptr || '/' || v_idx;
    else
      return '[]';
    end if;
  end loop;
  return '[]'; -- not reached
end
$$;

-- Marks the next update of the caller's row as this change (see userdb.log_change).
create or replace function userdb.stage_change(
  uid uuid, before timestamptz, ops jsonb, client_id text, batch_seq bigint
)
returns void
language sql
volatile
set search_path = ''
as $$
  select pg_catalog.set_config('userdb.pending',
    jsonb_build_object('user_id', uid, 'before', before, 'ops', ops,
                       'client_id', client_id, 'batch_seq', batch_seq)::text,
    true);
$$;

-- The API ----------------------------------------------------------------------------

create or replace function public.userdb_set(path text[], value jsonb, expected_updated_at timestamptz default null)
returns timestamptz
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := userdb.require_uid();
  v_current timestamptz;
  v_db jsonb;
  v_clients jsonb;
  v_new jsonb;
  v_updated timestamptz;
begin
  if path is null or value is null then
    raise exception using errcode = '22023', message = 'userdb_set: path and value must not be null';
  end if;
  select d.db, d.updated_at, d.clients into v_db, v_current, v_clients
    from public.user_databases d
   where d.user_id = v_uid
     for update;
  if not found then
    raise exception using errcode = 'PT404', message = 'userdb_set: no document for this user; call userdb_init() first';
  end if;
  if expected_updated_at is not null and expected_updated_at <> v_current then
    raise exception using
      errcode = 'PT409',
      message = 'userdb_set: the document changed since expected_updated_at',
      detail = to_json(v_current) #>> '{}';
  end if;
  if cardinality(path) = 0 then
    v_new := value;
  else
    v_new := jsonb_set(v_db, path, value, true);
  end if;
  perform userdb.check_document(v_new, 'userdb_set');
  perform userdb.check_row_size(v_new, v_clients, 'userdb_set');
  perform userdb.stage_change(v_uid, v_current, userdb.set_ops(v_db, path, value), null, null);
  update public.user_databases d
     set db = v_new
   where d.user_id = v_uid
  returning d.updated_at into v_updated;
  return v_updated;
end
$$;

create or replace function public.userdb_patch(
  ops jsonb, expected_updated_at timestamptz, client_id text, batch_seq bigint
)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := userdb.require_uid();
  v_db jsonb;
  v_current timestamptz;
  v_clients jsonb;
  v_entry jsonb;
  v_last bigint;
  v_now bigint;
  v_new jsonb;
  v_new_clients jsonb;
  v_updated timestamptz;
begin
  if client_id is not null then
    if char_length(client_id) not between 1 and userdb.client_id_max_length() then
      raise exception using
        errcode = '22023',
        message = format('userdb_patch: client_id must be 1 to %s characters (got %s)',
                         userdb.client_id_max_length(), char_length(client_id));
    end if;
    if batch_seq is null then
      raise exception using errcode = '22023', message = 'userdb_patch: batch_seq is required with client_id';
    end if;
  end if;
  select d.db, d.updated_at, d.clients into v_db, v_current, v_clients
    from public.user_databases d
   where d.user_id = v_uid
     for update;
  if not found then
    raise exception using errcode = 'PT404', message = 'userdb_patch: no document for this user; call userdb_init() first';
  end if;

  if client_id is not null then
    v_entry := v_clients -> client_id;
    v_last := userdb.client_seq(v_entry);
    if v_last is not null and batch_seq <= v_last then
      return jsonb_build_object('applied', false, 'updated_at', v_current);
    end if;
  end if;

  if expected_updated_at is null or expected_updated_at <> v_current then
    raise exception using
      errcode = 'PT409',
      message = 'userdb_patch: the document changed since expected_updated_at',
      detail = to_json(v_current) #>> '{}';
  end if;

  v_new := userdb.apply_patch(v_db, ops);
  perform userdb.check_document(v_new, 'userdb_patch');

  v_new_clients := v_clients;
  if client_id is not null then
    v_now := extract(epoch from now())::bigint;
    if v_entry is not null then
      v_new_clients := jsonb_set(v_clients, array[client_id], jsonb_build_array(batch_seq, v_now), false);
    else
      -- A client id not seen before: the map grows, so prune it now.
      v_new_clients := userdb.prune_clients(
        v_clients || jsonb_build_object(client_id, jsonb_build_array(batch_seq, v_now)), v_now);
    end if;
  end if;
  perform userdb.check_row_size(v_new, v_new_clients, 'userdb_patch');

  perform userdb.stage_change(v_uid, v_current, ops, client_id, batch_seq);
  update public.user_databases d
     set db = v_new,
         clients = v_new_clients
   where d.user_id = v_uid
  returning d.updated_at into v_updated;
  return jsonb_build_object('applied', true, 'updated_at', v_updated);
end
$$;

-- Replaces the one-argument userdb_pull: a call with only `since` is answered as before.
drop function if exists public.userdb_pull(timestamptz);

-- {db, updated_at}, {changes, updated_at} or null: see the head of this file.
-- The chain is read newest first from the current token back to `since`, and abandoned
-- (whole document) at the first entry that does not continue it (a gap: a pruned, lost
-- or foreign entry), at a reset, or once its bytes reach the document's. The document's
-- size is its JSON text; it is only computed when the chain is at least 1/16 of the
-- document's stored size (binary jsonb, at most about 6 times its JSON text), so a small
-- delta costs O(delta).
create or replace function public.userdb_pull(since timestamptz default null, delta boolean default false)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_updated timestamptz;
  v_stored bigint;
  v_doc_bytes bigint := null;
  v_expect timestamptz;
  v_bytes bigint := 0;
  v_changes jsonb[] := '{}';
  v_ok boolean := false;
  r record;
begin
  select d.updated_at, pg_column_size(d.db) into v_updated, v_stored
    from public.user_databases d
   where d.user_id = v_uid;
  if not found or (since is not null and v_updated <= since) then
    return null;
  end if;

  if delta and since is not null then
    v_expect := v_updated;
    for r in
      select c.before, c.after, c.ops, c.client_id, c.batch_seq, c.bytes
        from userdb.changes c
       where c.user_id = v_uid
       order by c.id desc
    loop
      exit when r.after is distinct from v_expect or r.ops is null or r.before < since;
      v_bytes := v_bytes + r.bytes;
      if v_bytes * 16 >= v_stored then
        if v_doc_bytes is null then
          select octet_length(d.db::text) into v_doc_bytes
            from public.user_databases d
           where d.user_id = v_uid;
        end if;
        exit when v_bytes >= v_doc_bytes;
      end if;
      if r.before = since then
        -- the oldest entry: the only one that carries `before` (the others' is the previous `after`)
        v_changes := v_changes || jsonb_build_object('before', r.before, 'after', r.after, 'ops', r.ops,
                                                     'client_id', r.client_id, 'batch_seq', r.batch_seq);
        v_ok := true;
        exit;
      end if;
      v_changes := v_changes || jsonb_build_object('after', r.after, 'ops', r.ops,
                                                   'client_id', r.client_id, 'batch_seq', r.batch_seq);
      v_expect := r.before;
    end loop;
    if v_ok then
      return jsonb_build_object(
        'changes', (select jsonb_agg(e order by o desc) from unnest(v_changes) with ordinality as u(e, o)),
        'updated_at', v_updated);
    end if;
  end if;

  return (select jsonb_build_object('db', d.db, 'updated_at', d.updated_at)
            from public.user_databases d
           where d.user_id = v_uid);
end
$$;

comment on function public.userdb_pull(timestamptz, boolean) is
  'The caller''s {db, updated_at}, or with delta the {changes, updated_at} since `since` when the log covers it and is smaller; null when nothing is newer than since.';

-- Storage ----------------------------------------------------------------------------

-- Every write rewrites the user's whole document (one JSONB value per user): compress it
-- with lz4 where the server has it (PostgreSQL 14+ built with lz4, as on Supabase), about
-- twice as fast as the default pglz on a 10 MB document for a slightly larger value. New
-- values only: a document keeps its compression until its next write. Elsewhere (PGlite)
-- the default stays.
do $$
begin
  alter table public.user_databases alter column db set compression lz4;
exception when feature_not_supported or undefined_object or syntax_error then
  raise notice 'userdb: lz4 compression is not available here; documents keep the default';
end
$$;

-- Privileges --------------------------------------------------------------------------

revoke execute on function
  public.userdb_pull(timestamptz, boolean),
  userdb.log_max_age(),
  userdb.log_max_bytes(),
  userdb.broadcast_max_bytes(),
  userdb.client_id_max_length(),
  userdb.clients_max_age(),
  userdb.clients_max_count(),
  userdb.check_row_size(jsonb, jsonb, text),
  userdb.client_seq(jsonb),
  userdb.prune_clients(jsonb, bigint),
  userdb.log_change(),
  userdb.set_ops(jsonb, text[], jsonb),
  userdb.stage_change(uuid, timestamptz, jsonb, text, bigint)
from public, anon;

grant execute on function
  public.userdb_pull(timestamptz, boolean),
  userdb.log_max_age(),
  userdb.log_max_bytes(),
  userdb.broadcast_max_bytes(),
  userdb.client_id_max_length(),
  userdb.clients_max_age(),
  userdb.clients_max_count(),
  userdb.check_row_size(jsonb, jsonb, text),
  userdb.client_seq(jsonb),
  userdb.prune_clients(jsonb, bigint),
  userdb.set_ops(jsonb, text[], jsonb),
  userdb.stage_change(uuid, timestamptz, jsonb, text, bigint)
to authenticated, service_role;

-- The patch engine in time linear in ops + document ---------------------------------------
-- Replaces the first migration's userdb.apply_patch_pass (same contract, same errors).
--
-- Row ops (/tables/<t>/rows/<i>[/...]) work on an in-memory array of the table's rows
-- as before. Every other op used to copy the whole document (jsonb_set), so a batch of
-- many such ops cost ops x document. Now, once a batch has more than 8 of them, they go
-- to an overlay: the members of the document (level 1, e.g. /version, /tables) and the
-- members of its object members (level 2, e.g. /tables/<t>) that the patch touches are
-- held in arrays indexed by an open-addressing hash table (plpgsql arrays are updated in
-- place), and an op costs the size of the level-2 member it touches (or of the level-1
-- member, when that is an array), not of the document. The touched members are merged
-- back once at the end: (doc - removed) || set, per level. A level-1 write over a member
-- whose own members were touched merges them first (pathological patches that alternate
-- the two pay that merge each time; their ops carry values of that size anyway).
create or replace function userdb.apply_patch_pass(doc jsonb, ops jsonb, in_order boolean)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_doc jsonb := doc;
  v_ops jsonb[];
  v_tbl text[];          -- per op: the table of a row op, else null
  v_count integer;
  v_bad integer := null; -- in order: the first op whose form is wrong (1-based)
  v_op jsonb;
  v_kind text;
  v_path text;
  v_value jsonb;
  v_tokens text[];
  v_n integer;
  v_k integer;
  v_seg_end integer;
  v_order integer[];
  v_exec integer[] := '{}';
  v_few text[];
  v_direct integer;
  i integer;
  x integer;
  v_t text;
  s_table text := null;  -- the table loaded at a point of the execution order (planning)
  v_generic boolean;
  -- The rows array being worked on (see the first migration).
  c_table text := null;
  c_rows jsonb[];
  c_len integer;
  c_holes integer;
  c_tree integer[];
  c_cap integer;
  c_top integer;
  c_tabobj jsonb;        -- overlay: the table object the rows came from
  c_j integer;           -- overlay: its level-2 entry
  v_logical integer;
  v_phys integer;
  v_step integer;
  v_rest integer;
  v_j integer;
  -- The overlay: entries (level 1: par null; level 2: par = the level-1 entry), state
  -- 0 = not overridden (read the base), 1 = set to val, 2 = removed; typ = type of the
  -- current value (null: missing); gen: level 1, bumped on every write of the member
  -- itself; level 2, the parent's gen its state is valid for; kids: level 1, number of
  -- valid level-2 entries in state 1 or 2.
  o_on boolean := false;
  o_base jsonb;
  e_n integer := 0;
  e_key text[] := '{}';
  e_par integer[] := '{}';
  e_name text[] := '{}';
  e_val jsonb[] := '{}';
  e_st smallint[] := '{}';
  e_typ text[] := '{}';
  e_gen integer[] := '{}';
  e_kids integer[] := '{}';
  h_slots integer[];
  h_mask integer := 255;
  v_hkey text;
  v_slot integer;
  v_e integer;
  v_i integer;
  v_cur jsonb;
  v_exists boolean;
  v_removed text[];
  v_set jsonb;
begin
  if ops is null or jsonb_typeof(ops) <> 'array' then
    raise exception using errcode = '22023', message = 'userdb_patch: ops must be a JSON array';
  end if;
  v_ops := array(select e from jsonb_array_elements(ops) with ordinality as t(e, o) order by o);
  v_count := cardinality(v_ops);
  v_tbl := array_fill(null::text, array[v_count]);

  -- Pass 1: check each op's form and classify it. In order, stop before the first
  -- malformed op: the ops before it may fail first.
  for i in 1 .. v_count loop
    v_op := v_ops[i];
    if in_order and not userdb.op_is_well_formed(v_op) then
      v_bad := i;
      v_count := i - 1;
      exit;
    end if;
    v_tokens := userdb.check_op(i - 1, v_op);
    if cardinality(v_tokens) >= 4 and v_tokens[1] = 'tables' and v_tokens[3] = 'rows' then
      v_tbl[i] := v_tokens[2];
    end if;
  end loop;

  -- Tables with only one or two row ops in the whole patch are cheaper to patch in place
  -- than to load and write back.
  v_few := array(select t from unnest(v_tbl[1:v_count]) as u(t) where t is not null group by t having count(*) < 3);
  select count(*) into v_direct from unnest(v_tbl[1:v_count]) as u(t) where t is null or t = any (v_few);
  o_on := v_direct > 8;
  if o_on then
    o_base := doc || '{}'::jsonb; -- (detoasted once)
    h_slots := array_fill(0, array[h_mask + 1]);
  end if;

  -- Pass 2: the order of execution. Within a run of consecutive row ops, the ops of each
  -- table are applied together, the loaded table first (ops on different tables commute,
  -- so the result is the same as in order); in order, strictly in order.
  v_k := 1;
  while v_k <= v_count loop
    if v_tbl[v_k] is null then
      v_exec := v_exec || v_k;
      -- (planning only: any op under /tables may write the loaded rows back)
      v_path := v_ops[v_k] ->> 'path';
      if v_path = '/tables' or v_path like '/tables/%' then
        s_table := null;
      end if;
      v_k := v_k + 1;
      continue;
    end if;
    v_seg_end := v_k;
    while v_seg_end < v_count and v_tbl[v_seg_end + 1] is not null loop
      v_seg_end := v_seg_end + 1;
    end loop;
    select array_agg(v_k - 1 + o
                     order by case when in_order then 0 else (t is distinct from s_table)::integer end,
                              case when in_order then 0 else first_at end,
                              o)
      into v_order
      from (select t, o, min(o) over (partition by t) as first_at
              from unnest(v_tbl[v_k:v_seg_end]) with ordinality as u(t, o)) as s;
    v_exec := v_exec || v_order;
    foreach i in array v_order loop
      if not (v_tbl[i] = any (v_few)) then
        s_table := v_tbl[i];
      end if;
    end loop;
    v_k := v_seg_end + 1;
  end loop;

  -- Pass 3: apply.
  foreach i in array v_exec loop
    v_t := v_tbl[i];
    v_op := v_ops[i];
    v_kind := v_op ->> 'op';
    v_path := v_op ->> 'path';
    v_value := v_op -> 'value';
    v_tokens := userdb.parse_pointer(i - 1, v_kind, v_path);
    v_generic := v_t is null or v_t = any (v_few);

    -- Write the loaded rows back before they are replaced by other rows, or before an op
    -- that reads or writes their table (or all tables).
    if c_table is not null
       and (case when v_generic
                 then v_tokens[1] = 'tables' and (cardinality(v_tokens) = 1 or v_tokens[2] = c_table)
                 else v_t is distinct from c_table end) then
      if o_on then
        if e_st[c_j] = 0 then
          e_kids[e_par[c_j]] := e_kids[e_par[c_j]] + 1;
        end if;
        e_val[c_j] := jsonb_set(c_tabobj, '{rows}', userdb.rows_to_jsonb(c_rows));
        e_st[c_j] := 1;
        e_typ[c_j] := 'object';
      else
        v_doc := jsonb_set(v_doc, array['tables', c_table, 'rows'], userdb.rows_to_jsonb(c_rows));
      end if;
      c_table := null;
    end if;

    if not v_generic and c_table is distinct from v_t then
      -- Load the rows of v_t when they have the documented shape (else: generic, which
      -- reports what is wrong).
      if o_on then
        v_i := null;
        v_j := null;
        for v_n in 1 .. 2 loop
          v_hkey := case when v_n = 1 then '1:tables' else '2:' || v_i || ':' || v_t end;
          v_slot := (hashtext(v_hkey) & h_mask) + 1;
          loop
            v_e := h_slots[v_slot];
            exit when v_e = 0 or e_key[v_e] = v_hkey;
            v_slot := (v_slot & h_mask) + 1;
          end loop;
          if v_e = 0 then
            e_n := e_n + 1;
            v_e := e_n;
            e_key[v_e] := v_hkey;
            h_slots[v_slot] := v_e;
            e_st[v_e] := 0;
            e_kids[v_e] := 0;
            e_par[v_e] := null;
            e_val[v_e] := null;
            e_typ[v_e] := null;
            if v_n = 1 then
              e_name[v_e] := 'tables';
              e_typ[v_e] := jsonb_typeof(o_base -> 'tables');
              e_gen[v_e] := 0;
            else
              e_par[v_e] := v_i;
              e_name[v_e] := v_t;
              e_gen[v_e] := -1;
            end if;
            if e_n * 2 > h_mask then
              h_mask := h_mask * 2 + 1;
              h_slots := array_fill(0, array[h_mask + 1]);
              for x in 1 .. e_n loop
                v_slot := (hashtext(e_key[x]) & h_mask) + 1;
                while h_slots[v_slot] <> 0 loop
                  v_slot := (v_slot & h_mask) + 1;
                end loop;
                h_slots[v_slot] := x;
              end loop;
            end if;
          end if;
          if v_n = 1 then
            v_i := v_e;
            exit when e_typ[v_i] is distinct from 'object';
          else
            v_j := v_e;
            if e_gen[v_j] <> e_gen[v_i] then
              e_gen[v_j] := e_gen[v_i];
              e_st[v_j] := 0;
              e_typ[v_j] := jsonb_typeof(case when e_st[v_i] = 1 then e_val[v_i] -> v_t
                                              else o_base #> array['tables', v_t] end);
            end if;
          end if;
        end loop;
        if v_j is not null and e_typ[v_j] = 'object' then
          v_cur := case when e_st[v_j] = 1 then e_val[v_j]
                        when e_st[v_i] = 1 then e_val[v_i] -> v_t
                        else o_base #> array['tables', v_t] end;
          if jsonb_typeof(v_cur -> 'rows') = 'array' then
            c_table := v_t;
            c_tabobj := v_cur;
            c_j := v_j;
            c_rows := array(select r from jsonb_array_elements(v_cur -> 'rows') with ordinality as u(r, o) order by o);
            c_len := cardinality(c_rows);
            c_holes := 0;
          end if;
        end if;
      else
        -- (#> would also index into arrays, leniently: only the documented shape is cached)
        if jsonb_typeof(v_doc #> array['tables', v_t, 'rows']) = 'array'
           and jsonb_typeof(v_doc -> 'tables') = 'object'
           and jsonb_typeof(v_doc #> array['tables', v_t]) = 'object' then
          c_table := v_t;
          c_rows := array(select r from jsonb_array_elements(v_doc #> array['tables', v_t, 'rows'])
                                          with ordinality as u(r, o) order by o);
          c_len := cardinality(c_rows);
          c_holes := 0;
        end if;
      end if;
    end if;
    v_generic := v_generic or c_table is distinct from v_t;

    if v_generic and not o_on then
      v_doc := userdb.apply_op(v_doc, i - 1, v_kind, v_path, v_tokens, v_value);
      continue;
    end if;

    if v_generic then
      -- The overlay. Level 1: the member tokens[1] of the document.
      v_n := cardinality(v_tokens);
      v_hkey := '1:' || v_tokens[1];
      v_slot := (hashtext(v_hkey) & h_mask) + 1;
      loop
        v_e := h_slots[v_slot];
        exit when v_e = 0 or e_key[v_e] = v_hkey;
        v_slot := (v_slot & h_mask) + 1;
      end loop;
      if v_e = 0 then
        e_n := e_n + 1;
        v_e := e_n;
        e_key[v_e] := v_hkey;
        h_slots[v_slot] := v_e;
        e_st[v_e] := 0;
        e_kids[v_e] := 0;
        e_par[v_e] := null;
        e_val[v_e] := null;
        e_typ[v_e] := null;
        e_name[v_e] := v_tokens[1];
        e_typ[v_e] := jsonb_typeof(o_base -> v_tokens[1]);
        e_gen[v_e] := 0;
        if e_n * 2 > h_mask then
          h_mask := h_mask * 2 + 1;
          h_slots := array_fill(0, array[h_mask + 1]);
          for x in 1 .. e_n loop
            v_slot := (hashtext(e_key[x]) & h_mask) + 1;
            while h_slots[v_slot] <> 0 loop
              v_slot := (v_slot & h_mask) + 1;
            end loop;
            h_slots[v_slot] := x;
          end loop;
        end if;
      end if;
      v_i := v_e;

      if v_n = 1 or e_typ[v_i] is distinct from 'object' then
        -- An op on the member itself, or inside a member that is not an object.
        if e_kids[v_i] > 0 then
          -- Merge its touched members first.
          select coalesce(array_agg(u.n) filter (where u.s = 2), '{}'),
                 coalesce(jsonb_object_agg(u.n, u.v) filter (where u.s = 1), '{}')
            into v_removed, v_set
            from unnest(e_par, e_name, e_val, e_st, e_gen) as u(p, n, v, s, g)
           where u.p = v_i and u.g = e_gen[v_i] and u.s > 0;
          e_val[v_i] := ((case when e_st[v_i] = 1 then e_val[v_i] else o_base -> e_name[v_i] end) - v_removed) || v_set;
          e_st[v_i] := 1;
          e_kids[v_i] := 0;
          e_gen[v_i] := e_gen[v_i] + 1;
        end if;
        if v_n = 1 then
          v_exists := e_typ[v_i] is not null;
          if v_kind <> 'add' and not v_exists then
            perform userdb.patch_error(i - 1, v_kind, v_path, 'no value at this path');
          end if;
          case v_kind
            when 'add', 'replace' then
              e_st[v_i] := 1;
              e_val[v_i] := v_value;
              e_typ[v_i] := jsonb_typeof(v_value);
              e_gen[v_i] := e_gen[v_i] + 1;
            when 'remove' then
              e_st[v_i] := 2;
              e_val[v_i] := null;
              e_typ[v_i] := null;
              e_gen[v_i] := e_gen[v_i] + 1;
            else -- test
              if (case when e_st[v_i] = 1 then e_val[v_i] else o_base -> v_tokens[1] end) <> v_value then
                perform userdb.patch_error(i - 1, v_kind, v_path, 'test failed: the value differs');
              end if;
          end case;
        else
          if e_typ[v_i] is distinct from 'array' then
            perform userdb.patch_error(i - 1, v_kind, v_path, 'no value at this path');
          end if;
          v_cur := userdb.apply_op(case when e_st[v_i] = 1 then e_val[v_i] else o_base -> v_tokens[1] end,
                                   i - 1, v_kind, v_path, v_tokens[2:], v_value);
          if v_kind <> 'test' then
            e_st[v_i] := 1;
            e_val[v_i] := v_cur;
            e_gen[v_i] := e_gen[v_i] + 1;
          end if;
        end if;
        continue;
      end if;

      -- Level 2: the member tokens[2] of the object tokens[1].
      v_hkey := '2:' || v_i || ':' || v_tokens[2];
      v_slot := (hashtext(v_hkey) & h_mask) + 1;
      loop
        v_e := h_slots[v_slot];
        exit when v_e = 0 or e_key[v_e] = v_hkey;
        v_slot := (v_slot & h_mask) + 1;
      end loop;
      if v_e = 0 then
        e_n := e_n + 1;
        v_e := e_n;
        e_key[v_e] := v_hkey;
        h_slots[v_slot] := v_e;
        e_st[v_e] := 0;
        e_kids[v_e] := 0;
        e_par[v_e] := null;
        e_val[v_e] := null;
        e_typ[v_e] := null;
        e_par[v_e] := v_i;
        e_name[v_e] := v_tokens[2];
        e_gen[v_e] := -1;
        if e_n * 2 > h_mask then
          h_mask := h_mask * 2 + 1;
          h_slots := array_fill(0, array[h_mask + 1]);
          for x in 1 .. e_n loop
            v_slot := (hashtext(e_key[x]) & h_mask) + 1;
            while h_slots[v_slot] <> 0 loop
              v_slot := (v_slot & h_mask) + 1;
            end loop;
            h_slots[v_slot] := x;
          end loop;
        end if;
      end if;
      v_j := v_e;
      if e_gen[v_j] <> e_gen[v_i] then
        e_gen[v_j] := e_gen[v_i];
        e_st[v_j] := 0;
        e_typ[v_j] := jsonb_typeof(case when e_st[v_i] = 1 then e_val[v_i] -> v_tokens[2]
                                        else o_base #> v_tokens[1:2] end);
      end if;

      if v_n = 2 then
        v_exists := e_typ[v_j] is not null;
        if v_kind <> 'add' and not v_exists then
          perform userdb.patch_error(i - 1, v_kind, v_path, 'no value at this path');
        end if;
        if v_kind = 'test' then
          if (case when e_st[v_j] = 1 then e_val[v_j]
                   when e_st[v_i] = 1 then e_val[v_i] -> v_tokens[2]
                   else o_base #> v_tokens[1:2] end) <> v_value then
            perform userdb.patch_error(i - 1, v_kind, v_path, 'test failed: the value differs');
          end if;
          continue;
        end if;
        if e_st[v_j] = 0 then
          e_kids[v_i] := e_kids[v_i] + 1;
        end if;
        if v_kind = 'remove' then
          e_st[v_j] := 2;
          e_val[v_j] := null;
          e_typ[v_j] := null;
        else
          e_st[v_j] := 1;
          e_val[v_j] := v_value;
          e_typ[v_j] := jsonb_typeof(v_value);
        end if;
      else
        if e_typ[v_j] is null then
          perform userdb.patch_error(i - 1, v_kind, v_path, 'no value at this path');
        end if;
        v_cur := userdb.apply_op(case when e_st[v_j] = 1 then e_val[v_j]
                                      when e_st[v_i] = 1 then e_val[v_i] -> v_tokens[2]
                                      else o_base #> v_tokens[1:2] end,
                                 i - 1, v_kind, v_path, v_tokens[3:], v_value);
        if v_kind <> 'test' then
          if e_st[v_j] = 0 then
            e_kids[v_i] := e_kids[v_i] + 1;
          end if;
          e_st[v_j] := 1;
          e_val[v_j] := v_cur;
          e_typ[v_j] := jsonb_typeof(v_cur);
        end if;
      end if;
      continue;
    end if;

    -- A row op on the loaded rows (see the first migration).
    v_n := cardinality(v_tokens);
    v_logical := userdb.array_index(i - 1, v_kind, v_path, v_tokens[4], c_len, v_n = 4 and v_kind = 'add');
    -- The physical position of the element at v_logical: the (v_logical + 1)-th one not
    -- removed, found by binary lifting on the tree (O(log n)).
    v_phys := v_logical;
    if c_holes > 0 and v_logical < c_len then
      v_phys := 0;
      v_rest := v_logical + 1;
      v_step := c_top;
      while v_step > 0 loop
        if v_phys + v_step <= c_cap and v_step - c_tree[v_phys + v_step] < v_rest then
          v_phys := v_phys + v_step;
          v_rest := v_rest - (v_step - c_tree[v_phys]);
        end if;
        v_step := v_step / 2;
      end loop;
    end if;
    if v_n > 4 then
      c_rows[v_phys + 1] := userdb.apply_op(c_rows[v_phys + 1], i - 1, v_kind, v_path, v_tokens[5:], v_value);
    elsif v_kind = 'add' then
      if v_logical = c_len then
        c_rows := array_append(c_rows, v_value);
      else
        -- Insert in the middle: close the holes, then shift.
        if c_holes > 0 then
          c_rows := array_remove(c_rows, null::jsonb);
          c_holes := 0;
        end if;
        c_rows := array_cat(array_append(c_rows[1:v_logical], v_value), c_rows[v_logical + 1:]);
      end if;
      c_len := c_len + 1;
    elsif v_kind = 'remove' then
      if c_holes = 0 then
        -- Room for every element the rest of the patch could append.
        c_cap := cardinality(c_rows) + v_count;
        c_tree := array_fill(0, array[c_cap]);
        c_top := 1;
        while c_top * 2 <= c_cap loop
          c_top := c_top * 2;
        end loop;
      end if;
      c_rows[v_phys + 1] := null;
      v_j := v_phys + 1;
      while v_j <= c_cap loop
        c_tree[v_j] := c_tree[v_j] + 1;
        v_j := v_j + (v_j & -v_j);
      end loop;
      c_holes := c_holes + 1;
      c_len := c_len - 1;
    elsif v_kind = 'replace' then
      c_rows[v_phys + 1] := v_value;
    elsif c_rows[v_phys + 1] <> v_value then -- test
      perform userdb.patch_error(i - 1, v_kind, v_path, 'test failed: the value differs');
    end if;
  end loop;

  if v_bad is not null then
    perform userdb.check_op(v_bad - 1, v_ops[v_bad]); -- raises
  end if;
  if c_table is not null then
    if o_on then
      if e_st[c_j] = 0 then
        e_kids[e_par[c_j]] := e_kids[e_par[c_j]] + 1;
      end if;
      e_val[c_j] := jsonb_set(c_tabobj, '{rows}', userdb.rows_to_jsonb(c_rows));
      e_st[c_j] := 1;
    else
      v_doc := jsonb_set(v_doc, array['tables', c_table, 'rows'], userdb.rows_to_jsonb(c_rows));
    end if;
  end if;

  if o_on then
    -- Merge level 2 into level 1, then level 1 into the document.
    for x in 1 .. e_n loop
      if e_par[x] is null and e_kids[x] > 0 then
        select coalesce(array_agg(u.n) filter (where u.s = 2), '{}'),
               coalesce(jsonb_object_agg(u.n, u.v) filter (where u.s = 1), '{}')
          into v_removed, v_set
          from unnest(e_par, e_name, e_val, e_st, e_gen) as u(p, n, v, s, g)
         where u.p = x and u.g = e_gen[x] and u.s > 0;
        e_val[x] := ((case when e_st[x] = 1 then e_val[x] else o_base -> e_name[x] end) - v_removed) || v_set;
        e_st[x] := 1;
      end if;
    end loop;
    select coalesce(array_agg(u.n) filter (where u.s = 2), '{}'),
           coalesce(jsonb_object_agg(u.n, u.v) filter (where u.s = 1), '{}')
      into v_removed, v_set
      from unnest(e_par, e_name, e_val, e_st) as u(p, n, v, s)
     where u.p is null and u.s > 0;
    v_doc := (o_base - v_removed) || v_set;
  end if;
  return v_doc;
end
$$;
