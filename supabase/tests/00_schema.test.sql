-- userdb: schema, privileges and function hygiene.
-- Run with `supabase test db`, or scripts/pgtap.sh against a plain PostgreSQL server.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(26);

select has_table('public', 'user_databases', 'user_databases exists');
select columns_are('public', 'user_databases', array['user_id', 'db', 'updated_at', 'clients'],
  'user_databases has the documented columns');
select col_is_pk('public', 'user_databases', 'user_id', 'user_id is the primary key');
select fk_ok('public', 'user_databases', 'user_id', 'auth', 'users', 'id', 'user_id references auth.users');
select is(
  (select confdeltype from pg_constraint where conrelid = 'public.user_databases'::regclass and contype = 'f'),
  'c'::"char",
  'the document is deleted with its auth user (on delete cascade)'
);
select ok(
  (select relrowsecurity from pg_class where oid = 'public.user_databases'::regclass),
  'row level security is enabled'
);
select policies_are('public', 'user_databases', array['own read', 'own insert', 'own write'],
  'select, insert and update policies; no delete policy');
select policy_roles_are('public', 'user_databases', 'own read', array['authenticated'], 'policies apply to authenticated');
select is(
  (select count(*)::int from pg_policies
    where schemaname = 'public' and tablename = 'user_databases'
      and (coalesce(qual, '') || coalesce(with_check, '')) !~ 'SELECT auth\.uid\(\)'),
  0,
  'every policy uses (select auth.uid())'
);
select has_trigger('public', 'user_databases', 'user_databases_before_write', 'the token/size trigger exists');

select ok(
  exists (select 1 from pg_publication_tables
           where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'user_databases'),
  'user_databases is in the supabase_realtime publication'
);

select functions_are('public',
  (select array_agg(proname::text) from pg_proc
    where pronamespace = 'public'::regnamespace and proname not like 'userdb\_%')
  || array['userdb_init', 'userdb_get', 'userdb_set', 'userdb_patch', 'userdb_pull'],
  'the API: userdb_init, userdb_get, userdb_set, userdb_patch, userdb_pull');

select is(
  (select array_agg(p.oid::regprocedure::text order by 1) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where ((n.nspname = 'public' and p.proname like 'userdb\_%') or n.nspname = 'userdb')
      and ((p.prosecdef and p.oid <> 'userdb.log_change()'::regprocedure)
           or not coalesce(p.proconfig @> array['search_path=""'], false))),
  null,
  'lint: no userdb function but the log trigger is security definer; all have a fixed empty search_path'
);

select is(
  (select array_agg(p.oid::regprocedure::text order by 1) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where ((n.nspname = 'public' and p.proname like 'userdb\_%') or n.nspname = 'userdb')
      and has_function_privilege('anon', p.oid, 'execute')),
  null,
  'anon may execute no userdb function'
);

select function_privs_are('public', 'userdb_patch', array['jsonb', 'timestamp with time zone', 'text', 'bigint'],
  'authenticated', array['EXECUTE'], 'authenticated may execute userdb_patch');
select function_privs_are('public', 'userdb_pull', array['timestamp with time zone', 'boolean'],
  'service_role', array['EXECUTE'], 'service_role may execute userdb_pull(since, delta)');
select is(
  (select array_agg(p.oid::regprocedure::text) from pg_proc p where p.proname = 'userdb_pull'),
  array['userdb_pull(timestamp with time zone,boolean)'],
  'one userdb_pull: (since, delta), the one-argument function is replaced'
);

select has_table('userdb', 'changes', 'the change log exists');
select ok(
  (select relrowsecurity from pg_class where oid = 'userdb.changes'::regclass),
  'row level security is enabled on the change log'
);
select table_privs_are('userdb', 'changes', 'authenticated', array['SELECT'],
  'authenticated may only select the change log (RLS: own entries)');
select table_privs_are('userdb', 'changes', 'anon', array[]::text[], 'anon has no privilege on the change log');
select has_trigger('public', 'user_databases', 'user_databases_log_change', 'the log trigger exists');

select table_privs_are('public', 'user_databases', 'anon', array[]::text[], 'anon has no table privileges');
select table_privs_are('public', 'user_databases', 'authenticated', array['SELECT', 'INSERT', 'UPDATE'],
  'authenticated may select, insert and update (RLS decides which rows); no delete or truncate');

select is(
  (select rolbypassrls from pg_roles where rolname = 'service_role'),
  true,
  'service_role bypasses RLS'
);

select cmp_ok(userdb.max_bytes(), '>', 0::bigint, 'a size limit is set (default 8 MiB: see the migration)');

select * from finish();
rollback;
