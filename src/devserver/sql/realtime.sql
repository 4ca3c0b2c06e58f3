-- userdb dev server: change capture for Realtime's postgres_changes.
--
-- Hosted Realtime reads the write-ahead log (wal2json). The dev server cannot rely on
-- logical decoding (PGlite has none), so each table of the publication
-- supabase_realtime gets an AFTER ROW trigger that queues the change here and sends
-- its id with NOTIFY (whose payload is limited to 8000 bytes, so the row travels in
-- the table, not in the notification). NOTIFY is delivered on commit only and in commit
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

-- Values are rendered with to_jsonb in UTC, as Realtime renders wal2json values
-- (realtime.cast: to_jsonb(value::type)) on a UTC database.
create or replace function _userdb_realtime.capture()
returns trigger
language plpgsql
security definer
set search_path = ''
set timezone = 'UTC'
as $$
declare
  change_id bigint;
begin
  insert into _userdb_realtime.changes (change)
  values (
    jsonb_build_object(
      'type', tg_op,
      'schema', tg_table_schema,
      'table', tg_table_name,
      'commit_timestamp', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'record', case when tg_op <> 'DELETE' then to_jsonb(new) end,
      'old_record', case when tg_op <> 'INSERT' then to_jsonb(old) end
    )
  )
  returning id into change_id;
  perform pg_notify('_userdb_realtime', change_id::text);
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
