-- userdb: one JSONB document per user, synchronised through conflict-checked RPCs.
--
-- Runs unchanged on hosted Supabase, on `supabase start`, and on plain PostgreSQL
-- (15+) or PGlite after src/devserver/sql/bootstrap.sql. Safe to run twice.
--
-- Contract (all functions are SECURITY INVOKER with an empty search_path, executable
-- by `authenticated` and `service_role` only; row level security does the rest):
--
--   userdb_init()                                   -> jsonb {db, updated_at}
--   userdb_get(path text[])                         -> jsonb (db #> path)
--   userdb_set(path text[], value jsonb,
--              expected_updated_at timestamptz = null) -> timestamptz
--   userdb_patch(ops jsonb, expected_updated_at timestamptz,
--                client_id text, batch_seq bigint)    -> jsonb {applied, updated_at}
--   userdb_pull(since timestamptz = null)           -> jsonb {db, updated_at} | null
--
-- Errors (PostgREST answers HTTP nnn for SQLSTATE PTnnn):
--   PT409  conflict: expected_updated_at is not the document's updated_at. Nothing
--          changed. DETAIL holds the current updated_at as plain text in the ISO 8601
--          form PostgREST uses for timestamptz in JSON, i.e. `to_json(updated_at) #>> '{}'`,
--          e.g. 2026-11-27T12:00:00.123456+00:00 (offset per the session TimeZone).
--   PT413  the new document is larger than the size limit. Nothing changed.
--   PT404  the user has no document yet: call userdb_init() first.
--   22023  malformed patch (HTTP 400): the message names the 0-based op index, the op
--          and its path. Nothing changed. Also raised when a write would leave a document
--          that is not an object whose `tables` member is an object.
--   42501  no user id in the JWT (auth.uid() is null).
--
-- updated_at is the concurrency token. A trigger makes it strictly increase on every
-- write (greatest(clock_timestamp(), previous + 1 microsecond)), even for two writes in
-- one transaction or within one clock tick; clients cannot set it.
--
-- Size limit: 8 MiB (8388608 bytes) by default, measured as the size of the document's
-- binary jsonb value before compression (pg_column_size of the new value). To change it,
-- redefine userdb.max_bytes() in a later migration, e.g.:
--
--   create or replace function userdb.max_bytes() returns bigint
--   language sql immutable parallel safe set search_path = '' as $$ select 16777216::bigint $$;
--
-- Existing documents above a lowered limit stay readable; their next write that
-- changes the document must bring it under the limit.

-- The table -----------------------------------------------------------------------

create schema if not exists userdb;

comment on schema userdb is 'userdb internals (not exposed through the API).';

create table if not exists public.user_databases (
  user_id uuid primary key references auth.users (id) on delete cascade,
  db jsonb not null default '{"version":1,"tables":{}}',
  updated_at timestamptz not null default now()
);

-- Upgrades a table created by the original two-function setup in place.
alter table public.user_databases
  add column if not exists clients jsonb not null default '{}';

comment on table public.user_databases is
  'userdb: one JSON document per user. Write through the userdb_* functions.';
comment on column public.user_databases.db is
  'The document: {"version": 1, "tables": {name: {"schema": {...}, "rows": [[...], ...]}}}.';
comment on column public.user_databases.updated_at is
  'Concurrency token: strictly increases on every write (set by a trigger).';
comment on column public.user_databases.clients is
  'Exactly-once bookkeeping: client id -> the last batch_seq applied by userdb_patch.';

alter table public.user_databases drop constraint if exists user_databases_db_shape;
alter table public.user_databases add constraint user_databases_db_shape
  check (coalesce(jsonb_typeof(db) = 'object' and jsonb_typeof(db -> 'tables') = 'object', false));

alter table public.user_databases drop constraint if exists user_databases_clients_shape;
alter table public.user_databases add constraint user_databases_clients_shape
  check (jsonb_typeof(clients) = 'object');

-- The original setup indexed db with GIN. Every row is read by its primary key, and a
-- GIN index over a multi-megabyte document makes every write re-hash the whole document.
drop index if exists public.user_databases_db_gin;

-- Privileges and row level security ---------------------------------------------------

alter table public.user_databases enable row level security;

revoke all on table public.user_databases from public, anon, authenticated;
-- No delete (nor truncate) for users: the row goes with its auth user (on delete cascade).
grant select, insert, update on table public.user_databases to authenticated;
grant all on table public.user_databases to service_role;

drop policy if exists "own read" on public.user_databases;
drop policy if exists "own write" on public.user_databases;
drop policy if exists "own insert" on public.user_databases;

create policy "own read" on public.user_databases
  for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "own insert" on public.user_databases
  for insert to authenticated
  with check ((select auth.uid()) = user_id);

create policy "own write" on public.user_databases
  for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

-- Realtime: create the publication only where the platform has not.
do $userdb$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'user_databases'
  ) then
    alter publication supabase_realtime add table public.user_databases;
  end if;
end
$userdb$;

-- Internals -------------------------------------------------------------------------

grant usage on schema userdb to authenticated, service_role;

create or replace function userdb.max_bytes()
returns bigint
language sql
immutable
parallel safe
set search_path = ''
as $$ select 8388608::bigint $$;

comment on function userdb.max_bytes() is
  'Size limit of a document in bytes (binary jsonb, uncompressed). Redefine to change it.';

-- The current user's id, or 42501 when the request carries none.
create or replace function userdb.require_uid()
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception using
      errcode = '42501',
      message = 'userdb: not authenticated (the JWT has no sub claim)';
  end if;
  return v_uid;
end
$$;

-- Raises 22023 unless doc is an object whose `tables` is an object, and PT413 when it is
-- larger than userdb.max_bytes().
create or replace function userdb.check_document(doc jsonb, fn text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_size bigint;
begin
  if doc is null or jsonb_typeof(doc) <> 'object' or jsonb_typeof(doc -> 'tables') is distinct from 'object' then
    raise exception using
      errcode = '22023',
      message = format('%s: the document must be an object whose "tables" member is an object', fn);
  end if;
  v_size := pg_column_size(doc);
  if v_size > userdb.max_bytes() then
    raise exception using
      errcode = 'PT413',
      message = format('%s: the document would be %s bytes, over the limit of %s bytes',
                       fn, v_size, userdb.max_bytes()),
      hint = 'Delete data, or raise the limit by redefining userdb.max_bytes().';
  end if;
end
$$;

-- Row trigger: strictly increasing updated_at, size limit for every write path.
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
  -- For an unchanged, already stored document this is its compressed size, which is
  -- never above the size it was admitted with.
  if pg_column_size(new.db) > userdb.max_bytes() then
    raise exception using
      errcode = 'PT413',
      message = format('user_databases: the document is %s bytes, over the limit of %s bytes',
                       pg_column_size(new.db), userdb.max_bytes()),
      hint = 'Delete data, or raise the limit by redefining userdb.max_bytes().';
  end if;
  return new;
end
$$;

drop trigger if exists user_databases_before_write on public.user_databases;
create trigger user_databases_before_write
  before insert or update on public.user_databases
  for each row execute function userdb.before_write();

-- Raises 22023 for op number k (0-based).
create or replace function userdb.patch_error(k integer, op text, path text, reason text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  raise exception using
    errcode = '22023',
    message = format('userdb_patch: op %s (%s %s): %s', k, coalesce(op, '?'), coalesce(to_json(path)::text, 'null'), reason),
    detail = format('op_index=%s', k);
end
$$;

-- Splits a JSON Pointer (RFC 6901) into unescaped tokens. '' (the whole document) is
-- rejected; so are '~' escapes other than ~0 and ~1.
create or replace function userdb.parse_pointer(k integer, op text, path text)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_tokens text[];
  v_tok text;
  v_out text[] := '{}';
begin
  if path = '' then
    perform userdb.patch_error(k, op, path, 'the whole document cannot be a target');
  end if;
  if left(path, 1) <> '/' then
    perform userdb.patch_error(k, op, path, 'a JSON pointer must start with "/"');
  end if;
  -- ('/' is the one member named '', which string_to_array alone would drop)
  v_tokens := case when path = '/' then array[''] else string_to_array(substr(path, 2), '/') end;
  foreach v_tok in array v_tokens loop
    if strpos(v_tok, '~') > 0 then
      if v_tok ~ '~([^01]|$)' then
        perform userdb.patch_error(k, op, path, 'invalid "~" escape in JSON pointer');
      end if;
      v_tok := replace(replace(v_tok, '~1', '/'), '~0', '~');
    end if;
    v_out := v_out || v_tok;
  end loop;
  return v_out;
end
$$;

-- The array index named by a pointer token, or an error. Decimal without leading zeros;
-- '-' (one past the end) only where allow_end is true; the index must be below len
-- (or equal to it where allow_end is true).
create or replace function userdb.array_index(
  k integer, op text, path text, tok text, len integer, allow_end boolean
)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_idx bigint;
begin
  if tok = '-' then
    if allow_end then
      return len;
    end if;
    perform userdb.patch_error(k, op, path, '"-" (end of array) is only valid as the target of add');
  end if;
  if tok !~ '^(0|[1-9][0-9]{0,9})$' then
    perform userdb.patch_error(k, op, path, format('%s is not an array index', to_json(tok)));
  end if;
  v_idx := tok::bigint;
  if v_idx > len or (v_idx = len and not allow_end) then
    perform userdb.patch_error(k, op, path, format('array index %s is out of range (length %s)', v_idx, len));
  end if;
  return v_idx::integer;
end
$$;

-- Applies one op to target (a container), with the path given as tokens (at least one).
-- Semantics: RFC 6902 add/remove/replace/test as implemented by the userdb client.
create or replace function userdb.apply_op(
  target jsonb, k integer, op text, path text, tokens text[], value jsonb
)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  n integer := cardinality(tokens);
  v_parent jsonb := target;
  v_child jsonb;
  v_tok text;
  v_idx integer;
  v_len integer;
  v_path text[];
begin
  -- Walk to the parent of the target, checking every step.
  for i in 1 .. n - 1 loop
    v_tok := tokens[i];
    case jsonb_typeof(v_parent)
      when 'object' then
        v_child := v_parent -> v_tok;
      when 'array' then
        v_idx := userdb.array_index(k, op, path, v_tok, jsonb_array_length(v_parent), false);
        v_child := v_parent -> v_idx;
      else
        v_child := null;
    end case;
    if v_child is null then
      perform userdb.patch_error(k, op, path, 'no value at this path');
    end if;
    v_parent := v_child;
  end loop;

  v_tok := tokens[n];
  v_path := tokens;
  case jsonb_typeof(v_parent)
    when 'object' then
      v_child := v_parent -> v_tok;
      case op
        when 'add' then
          return jsonb_set(target, v_path, value, true);
        when 'remove' then
          if v_child is null then
            perform userdb.patch_error(k, op, path, 'no value at this path');
          end if;
          return target #- v_path;
        when 'replace' then
          if v_child is null then
            perform userdb.patch_error(k, op, path, 'no value at this path');
          end if;
          return jsonb_set(target, v_path, value, false);
        else -- test
          if v_child is null then
            perform userdb.patch_error(k, op, path, 'no value at this path');
          end if;
          if v_child <> value then
            perform userdb.patch_error(k, op, path, 'test failed: the value differs');
          end if;
          return target;
      end case;
    when 'array' then
      v_len := jsonb_array_length(v_parent);
      v_idx := userdb.array_index(k, op, path, v_tok, v_len, op = 'add');
      v_path[n] := v_idx::text;
      case op
        when 'add' then
          -- Inserts before v_idx; at v_idx = length, appends.
          return jsonb_insert(target, v_path, value, false);
        when 'remove' then
          return target #- v_path;
        when 'replace' then
          return jsonb_set(target, v_path, value, false);
        else -- test
          if (v_parent -> v_idx) <> value then
            perform userdb.patch_error(k, op, path, 'test failed: the value differs');
          end if;
          return target;
      end case;
    else
      perform userdb.patch_error(k, op, path, 'no value at this path');
  end case;
  return null; -- not reached
end
$$;

-- A rows array from its elements, leaving out the removed ones (SQL nulls).
create or replace function userdb.rows_to_jsonb(rows jsonb[])
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
  select to_jsonb(array_remove(rows, null::jsonb))
$$;

-- The tokens of op number k (0-based) after checking its form, or 22023.
create or replace function userdb.check_op(k integer, op jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_kind text;
  v_path text;
begin
  if jsonb_typeof(op) <> 'object' then
    perform userdb.patch_error(k, null, null, 'an op must be an object');
  end if;
  if jsonb_typeof(op -> 'op') is distinct from 'string' then
    perform userdb.patch_error(k, null, op ->> 'path', '"op" must be a string');
  end if;
  v_kind := op ->> 'op';
  if jsonb_typeof(op -> 'path') is distinct from 'string' then
    perform userdb.patch_error(k, v_kind, null, '"path" must be a string');
  end if;
  v_path := op ->> 'path';
  if v_kind not in ('add', 'remove', 'replace', 'test') then
    perform userdb.patch_error(k, v_kind, v_path, 'unknown op (supported: add, remove, replace, test)');
  end if;
  if v_kind <> 'remove' and not (op ? 'value') then
    perform userdb.patch_error(k, v_kind, v_path, '"value" is missing');
  end if;
  return userdb.parse_pointer(k, v_kind, v_path);
end
$$;

-- Whether userdb.check_op accepts op (without raising).
create or replace function userdb.op_is_well_formed(op jsonb)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  perform userdb.check_op(0, op);
  return true;
exception when sqlstate '22023' then
  return false;
end
$$;

-- Applies a JSON Patch (RFC 6902 subset: add, remove, replace, test) to doc, all or
-- nothing, with the semantics of the userdb client (applyCompact in src/doc/apply.ts):
--   * add: on an object member sets it; on an array index inserts before it (index =
--     length, or "-", appends); remove: the member or index must exist (array elements
--     shift); replace: the target must exist; test: JSON equality with `value`;
--   * every parent on the path must exist and be an object or an array;
--   * paths are JSON Pointers (RFC 6901, ~1 is "/", ~0 is "~", any other "~" is an
--     error); the whole document ('') cannot be a target; array indexes are decimal
--     without leading zeros; "-" only as the last token of an add;
--   * the first op that cannot be applied raises 22023 naming its 0-based index, op and
--     path.
--
-- Performance: row ops (/tables/<t>/rows/<i>[/...] where rows is an array) work on an
-- in-memory array of that table's rows, so a run of them costs about one copy of the
-- rows, not one copy of the document per op. Within a run of consecutive row ops, the
-- ops of each table are applied together (ops on different tables commute, so the
-- result is the same as applying them in order). Removes leave holes, skipped in
-- O(log n) through a Fenwick tree and closed once when the rows are written back. Other
-- ops, and the row ops of a table that has only one or two in the patch, apply to the
-- document directly. When the patch fails, it is applied again strictly in order to name
-- the first failing op.
create or replace function userdb.apply_patch_pass(doc jsonb, ops jsonb, in_order boolean)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_doc jsonb := doc;
  v_ops jsonb[];
  v_tbl text[];         -- per op: the table of a row op, else null
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
  v_few text[];
  i integer;
  v_t text;
  -- The rows array being worked on: table name, elements (SQL null = removed), the
  -- logical length, the number of removed elements, and a Fenwick tree counting the
  -- removed positions (allocated at the first remove), of size c_cap, c_top being the
  -- largest power of two not above c_cap.
  c_table text := null;
  c_rows jsonb[];
  c_len integer;
  c_holes integer;
  c_tree integer[];
  c_cap integer;
  c_top integer;
  v_logical integer;
  v_phys integer;
  v_step integer;
  v_rest integer;
  v_j integer;
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

  -- Pass 2: apply.
  v_k := 1;
  while v_k <= v_count loop
    if v_tbl[v_k] is null then
      v_op := v_ops[v_k];
      v_kind := v_op ->> 'op';
      v_path := v_op ->> 'path';
      v_tokens := userdb.parse_pointer(v_k - 1, v_kind, v_path);
      if c_table is not null and v_tokens[1] = 'tables'
         and (cardinality(v_tokens) = 1 or v_tokens[2] = c_table) then
        v_doc := jsonb_set(v_doc, array['tables', c_table, 'rows'], userdb.rows_to_jsonb(c_rows));
        c_table := null;
      end if;
      v_doc := userdb.apply_op(v_doc, v_k - 1, v_kind, v_path, v_tokens, v_op -> 'value');
      v_k := v_k + 1;
      continue;
    end if;

    -- A run of row ops: v_k .. v_seg_end, table by table (the loaded one first) unless
    -- in order.
    v_seg_end := v_k;
    while v_seg_end < v_count and v_tbl[v_seg_end + 1] is not null loop
      v_seg_end := v_seg_end + 1;
    end loop;
    select array_agg(v_k - 1 + o
                     order by case when in_order then 0 else (t is distinct from c_table)::integer end,
                              case when in_order then 0 else first_at end,
                              o)
      into v_order
      from (select t, o, min(o) over (partition by t) as first_at
              from unnest(v_tbl[v_k:v_seg_end]) with ordinality as u(t, o)) as s;

    foreach i in array v_order loop
      v_t := v_tbl[i];
      v_op := v_ops[i];
      v_kind := v_op ->> 'op';
      v_path := v_op ->> 'path';
      v_value := v_op -> 'value';
      v_tokens := userdb.parse_pointer(i - 1, v_kind, v_path);

      if c_table is distinct from v_t and not (v_t = any (v_few)) then
        if c_table is not null then
          v_doc := jsonb_set(v_doc, array['tables', c_table, 'rows'], userdb.rows_to_jsonb(c_rows));
          c_table := null;
        end if;
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

      if c_table is distinct from v_t then
        -- Few ops, or no rows array there (the generic path reports what is wrong).
        v_doc := userdb.apply_op(v_doc, i - 1, v_kind, v_path, v_tokens, v_value);
        continue;
      end if;

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
    v_k := v_seg_end + 1;
  end loop;

  if v_bad is not null then
    perform userdb.check_op(v_bad - 1, v_ops[v_bad]); -- raises
  end if;
  if c_table is not null then
    v_doc := jsonb_set(v_doc, array['tables', c_table, 'rows'], userdb.rows_to_jsonb(c_rows));
  end if;
  return v_doc;
end
$$;

create or replace function userdb.apply_patch(doc jsonb, ops jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  begin
    return userdb.apply_patch_pass(doc, ops, false);
  exception when sqlstate '22023' then
    -- Some op is wrong: find the first one.
    return userdb.apply_patch_pass(doc, ops, true);
  end;
end
$$;

-- The API ---------------------------------------------------------------------------

-- Upgrading from the original two-function setup: its userdb_init returned void, and its
-- two-argument userdb_set would make two-argument calls of the new one ambiguous.
drop function if exists public.userdb_set(text[], jsonb);
do $userdb$
begin
  if exists (
    select 1 from pg_catalog.pg_proc
    where oid = pg_catalog.to_regprocedure('public.userdb_init()') and prorettype <> 'jsonb'::regtype
  ) then
    drop function public.userdb_init();
  end if;
end
$userdb$;

-- Makes sure the user has a document (idempotent) and returns it with its token.
create or replace function public.userdb_init()
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := userdb.require_uid();
  v_result jsonb;
begin
  insert into public.user_databases (user_id) values (v_uid)
  on conflict (user_id) do nothing;
  select jsonb_build_object('db', d.db, 'updated_at', d.updated_at)
    into v_result
    from public.user_databases d
   where d.user_id = v_uid;
  return v_result;
end
$$;

comment on function public.userdb_init() is
  'Creates the caller''s document if missing; returns {db, updated_at}.';

-- db #> path for the caller's document (null when absent).
create or replace function public.userdb_get(path text[])
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select d.db #> path
    from public.user_databases d
   where d.user_id = (select auth.uid());
$$;

comment on function public.userdb_get(text[]) is
  'db #> path of the caller''s document.';

-- db := jsonb_set(db, path, value, true) (so, as with jsonb_set, a missing parent
-- changes nothing); an empty path replaces the whole document. With
-- expected_updated_at, raises PT409 unless it is the current token; without it (the
-- original two-argument call) writes unconditionally. Returns the new updated_at.
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
  v_new jsonb;
  v_updated timestamptz;
begin
  if path is null or value is null then
    raise exception using errcode = '22023', message = 'userdb_set: path and value must not be null';
  end if;
  select d.db, d.updated_at into v_db, v_current
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
  update public.user_databases d
     set db = v_new
   where d.user_id = v_uid
  returning d.updated_at into v_updated;
  return v_updated;
end
$$;

comment on function public.userdb_set(text[], jsonb, timestamptz) is
  'jsonb_set on the caller''s document, optionally checked against expected_updated_at; returns the new updated_at.';

-- Applies a batch of ops atomically.
--   * client_id/batch_seq make it exactly-once: batch_seq must increase per client id;
--     a batch whose batch_seq is not above the last one applied for client_id is not
--     applied again and answers {"applied": false, "updated_at": <current>} (checked
--     before the token, so the retry of a batch whose response was lost gets this answer
--     even though the token has moved). client_id null disables this bookkeeping.
--   * expected_updated_at must equal the document's updated_at (as returned by
--     userdb_init, userdb_pull, userdb_set or a previous userdb_patch); null never does,
--     so it always conflicts. Otherwise PT409 with the current token in DETAIL.
--   * ops: RFC 6902 add/remove/replace/test; see userdb.apply_patch. Any bad op: 22023.
-- Concurrent calls for one user serialize on the row lock.
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
  v_last bigint;
  v_new jsonb;
  v_updated timestamptz;
begin
  if client_id is not null and batch_seq is null then
    raise exception using errcode = '22023', message = 'userdb_patch: batch_seq is required with client_id';
  end if;
  select d.db, d.updated_at, d.clients into v_db, v_current, v_clients
    from public.user_databases d
   where d.user_id = v_uid
     for update;
  if not found then
    raise exception using errcode = 'PT404', message = 'userdb_patch: no document for this user; call userdb_init() first';
  end if;

  if client_id is not null then
    v_last := (v_clients ->> client_id)::bigint;
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

  update public.user_databases d
     set db = v_new,
         clients = case
           when client_id is null then d.clients
           else jsonb_set(d.clients, array[client_id], to_jsonb(batch_seq), true)
         end
   where d.user_id = v_uid
  returning d.updated_at into v_updated;
  return jsonb_build_object('applied', true, 'updated_at', v_updated);
end
$$;

comment on function public.userdb_patch(jsonb, timestamptz, text, bigint) is
  'Atomic, conflict-checked, exactly-once JSON Patch on the caller''s document; returns {applied, updated_at}.';

-- {db, updated_at} of the caller's document, or null when it has not changed since
-- `since` (updated_at <= since) or does not exist.
create or replace function public.userdb_pull(since timestamptz default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('db', d.db, 'updated_at', d.updated_at)
    from public.user_databases d
   where d.user_id = (select auth.uid())
     and (since is null or d.updated_at > since);
$$;

comment on function public.userdb_pull(timestamptz) is
  'The caller''s {db, updated_at}, or null when nothing is newer than since.';

-- Execute privileges: authenticated and service_role only (Supabase grants new
-- functions in public to anon by default).
revoke execute on function
  public.userdb_init(),
  public.userdb_get(text[]),
  public.userdb_set(text[], jsonb, timestamptz),
  public.userdb_patch(jsonb, timestamptz, text, bigint),
  public.userdb_pull(timestamptz),
  userdb.max_bytes(),
  userdb.require_uid(),
  userdb.check_document(jsonb, text),
  userdb.before_write(),
  userdb.patch_error(integer, text, text, text),
  userdb.parse_pointer(integer, text, text),
  userdb.array_index(integer, text, text, text, integer, boolean),
  userdb.apply_op(jsonb, integer, text, text, text[], jsonb),
  userdb.rows_to_jsonb(jsonb[]),
  userdb.check_op(integer, jsonb),
  userdb.op_is_well_formed(jsonb),
  userdb.apply_patch_pass(jsonb, jsonb, boolean),
  userdb.apply_patch(jsonb, jsonb)
from public, anon;

grant execute on function
  public.userdb_init(),
  public.userdb_get(text[]),
  public.userdb_set(text[], jsonb, timestamptz),
  public.userdb_patch(jsonb, timestamptz, text, bigint),
  public.userdb_pull(timestamptz),
  userdb.max_bytes(),
  userdb.require_uid(),
  userdb.check_document(jsonb, text),
  userdb.patch_error(integer, text, text, text),
  userdb.parse_pointer(integer, text, text),
  userdb.array_index(integer, text, text, text, integer, boolean),
  userdb.apply_op(jsonb, integer, text, text, text[], jsonb),
  userdb.rows_to_jsonb(jsonb[]),
  userdb.check_op(integer, jsonb),
  userdb.op_is_well_formed(jsonb),
  userdb.apply_patch_pass(jsonb, jsonb, boolean),
  userdb.apply_patch(jsonb, jsonb)
to authenticated, service_role;
