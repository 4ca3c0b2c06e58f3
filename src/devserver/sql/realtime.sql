-- userdb dev server: change capture for Realtime's postgres_changes.
--
-- Hosted Realtime reads the write-ahead log (wal2json). The dev server cannot rely on
-- logical decoding (PGlite has none), so each table of the publication
-- supabase_realtime gets an AFTER ROW trigger that sends the change with NOTIFY (whose
-- payload is limited to 8000 bytes: a larger change is stored here and only its id is
-- sent). NOTIFY is delivered on commit only and in commit
-- order, so rolled back changes are never seen. Writes from every connection are
-- captured, and every listening server reads them (old rows are deleted after a while).
-- Idempotent.

create schema if not exists _userdb_realtime;
revoke all on schema _userdb_realtime from public;

create table if not exists _userdb_realtime.changes (
  id bigserial primary key,
  change jsonb not null,
  captured_at timestamptz not null default clock_timestamp()
);
alter table _userdb_realtime.changes
  add column if not exists captured_at timestamptz not null default clock_timestamp();

-- Queues one change for the listening servers: a change that fits in a notification
-- (payload limit 8000 bytes) travels in it as `id:json`; a larger one is stored in the
-- table and only its id is sent. Ids come from one sequence, in capture order.
create or replace function _userdb_realtime.queue(change jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  change_id bigint := nextval('_userdb_realtime.changes_id_seq');
  text_form text := change::text;
begin
  if octet_length(text_form) <= 7900 then
    perform pg_notify('_userdb_realtime', change_id::text || ':' || text_form);
  else
    insert into _userdb_realtime.changes (id, change) values (change_id, change);
    perform pg_notify('_userdb_realtime', change_id::text);
  end if;
end
$$;

-- The servers' postgres_changes subscriptions, by table ('*': any). Hosted Realtime
-- decodes the write-ahead log outside the writer's transaction; here the capture runs in
-- it (a whole record, twice for an update), so it runs only while some server listens
-- to a table it can match. Each server refreshes its rows while it has such
-- subscriptions; the rows of a server that died expire after a minute.
create table if not exists _userdb_realtime.listeners (
  server_id text not null,
  schema_name text not null,
  table_name text not null,
  expires_at timestamptz not null,
  primary key (server_id, schema_name, table_name)
);

-- Values are rendered with to_jsonb in UTC, as Realtime renders wal2json values
-- (realtime.cast: to_jsonb(value::type)) on a UTC database.
create or replace function _userdb_realtime.capture()
returns trigger
language plpgsql
security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if not exists (
    select 1 from _userdb_realtime.listeners l
     where l.expires_at > clock_timestamp()
       and (l.schema_name = '*' or l.schema_name = tg_table_schema)
       and (l.table_name = '*' or l.table_name = tg_table_name)
  ) then
    return null; -- nobody subscribed: nothing to deliver
  end if;
  perform _userdb_realtime.queue(
    jsonb_build_object(
      'type', tg_op,
      'schema', tg_table_schema,
      'table', tg_table_name,
      'commit_timestamp', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'record', case when tg_op <> 'DELETE' then to_jsonb(new) end,
      'old_record', case when tg_op <> 'INSERT' then to_jsonb(old) end
    )
  );
  return null;
end
$$;

-- Installs the capture trigger on every table of supabase_realtime that lacks it, and
-- removes it from tables that left the publication.
create or replace function _userdb_realtime.sync_triggers()
returns void
language plpgsql
set search_path = ''
as $$
declare
  t record;
begin
  for t in
    select c.oid::regclass as rel
    from pg_catalog.pg_publication_tables p
    join pg_catalog.pg_namespace n on n.nspname = p.schemaname
    join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
    where p.pubname = 'supabase_realtime'
      and c.relkind = 'r'
      and not exists (
        select 1 from pg_catalog.pg_trigger g
        where g.tgrelid = c.oid and g.tgname = '_userdb_realtime_capture'
      )
  loop
    execute format(
      'create trigger _userdb_realtime_capture after insert or update or delete on %s '
      'for each row execute function _userdb_realtime.capture()',
      t.rel
    );
  end loop;

  for t in
    select g.tgrelid::regclass as rel
    from pg_catalog.pg_trigger g
    join pg_catalog.pg_class c on c.oid = g.tgrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where g.tgname = '_userdb_realtime_capture'
      and not exists (
        select 1 from pg_catalog.pg_publication_tables p
        where p.pubname = 'supabase_realtime' and p.schemaname = n.nspname and p.tablename = c.relname
      )
  loop
    execute format('drop trigger _userdb_realtime_capture on %s', t.rel);
  end loop;
end
$$;

select _userdb_realtime.sync_triggers();

-- Broadcast from the database: every committed insert into realtime.messages is queued
-- like a change (same table, same NOTIFY, so broadcasts and postgres_changes keep one
-- commit order) and sent to the channels of its topic. Hosted Realtime reads these
-- inserts from the write-ahead log; a rolled back insert is never seen here either. (Its
-- own trigger name: sync_triggers manages _userdb_realtime_capture by publication.)
create or replace function _userdb_realtime.capture_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.extension is distinct from 'broadcast' then
    return null;
  end if;
  perform _userdb_realtime.queue(
    jsonb_build_object(
      'type', 'BROADCAST',
      'id', new.id,
      'topic', new.topic,
      'event', new.event,
      'private', coalesce(new.private, false),
      'payload', new.payload,
      'binary_payload', case when new.binary_payload is not null then encode(new.binary_payload, 'base64') end
    )
  );
  return null;
end
$$;

do $realtime$
begin
  if not exists (
    select 1 from pg_catalog.pg_trigger
    where tgrelid = 'realtime.messages'::regclass and tgname = '_userdb_realtime_broadcast'
  ) then
    create trigger _userdb_realtime_broadcast after insert on realtime.messages
      for each row execute function _userdb_realtime.capture_message();
  end if;
end
$realtime$;

-- Which of many rows many subscribers may see, in one call: the dev server's batched
-- form of Realtime's apply_rls. `checks` is a JSON array of
--   {"role": r, "claims": c, "rel": "schema.table", "sql": s | null, "keys": [[pk values]...]}
-- For each check it returns the columns role r may select on rel (column privileges,
-- as apply_rls filters them), and, when sql is given, the indexes (1-based) of the keys
-- whose row r selects with claims c (row level security): sql is run as r with
-- `using keys` and answers int[]. An error (no privilege on the table, a failing
-- policy) means "not visible". Runs as the dev server's own (superuser) connection; the
-- role is reset before it returns.
create or replace function _userdb_realtime.visible(checks jsonb)
returns table (i int, cols text[], keys int[])
language plpgsql
as $$
declare
  c jsonb;
  n int := 0;
  selectable text[];
  visible int[];
begin
  for c in select value from jsonb_array_elements(checks) loop
    n := n + 1;
    selectable := '{}';
    visible := null;
    begin
      selectable := array(
        select a.attname::text
        from pg_catalog.pg_attribute a
        where a.attrelid = (c->>'rel')::regclass and a.attnum > 0 and not a.attisdropped
          and pg_catalog.has_column_privilege(c->>'role', a.attrelid, a.attnum, 'SELECT')
        order by a.attnum
      );
      if c->>'sql' is not null then
        perform pg_catalog.set_config('role', c->>'role', true),
          pg_catalog.set_config('request.jwt.claims', c->>'claims', true);
        execute c->>'sql' into visible using c->'keys';
        perform pg_catalog.set_config('role', 'none', true);
      end if;
    exception
      when others then
        -- The subtransaction's settings (role, claims) are rolled back with it.
        visible := null;
    end;
    i := n;
    cols := selectable;
    keys := coalesce(visible, '{}');
    return next;
  end loop;
end
$$;
revoke all on function _userdb_realtime.visible(jsonb) from public;
