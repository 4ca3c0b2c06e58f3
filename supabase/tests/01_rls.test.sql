-- userdb: row level security. No user sees or changes another user's document.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(22);

insert into auth.users (id, aud, role, email) values
  ('aaaaaaaa-0000-4000-8000-000000000001', 'authenticated', 'authenticated', 'a@example.test'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'authenticated', 'authenticated', 'b@example.test'),
  ('cccccccc-0000-4000-8000-000000000003', 'authenticated', 'authenticated', 'c@example.test');

-- B creates a document holding a secret.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"bbbbbbbb-0000-4000-8000-000000000002","role":"authenticated"}', true);
select public.userdb_init();
select public.userdb_set('{tables,secret}', '{"schema":{"fields":[],"primaryKey":[]},"rows":[["s"]]}');
reset role;
select set_config('test.b_before', (select db::text || updated_at::text from public.user_databases
  where user_id = 'bbbbbbbb-0000-4000-8000-000000000002'), true);

-- A acts.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-4000-8000-000000000001","role":"authenticated"}', true);
select lives_ok('select public.userdb_init()', 'A initialises their own document');

select results_eq(
  'select user_id::text from public.user_databases',
  array['aaaaaaaa-0000-4000-8000-000000000001'],
  'A sees only their own row'
);
select is(public.userdb_get('{tables,secret}'), null, 'userdb_get does not reach B''s document');
select is(public.userdb_pull() #> '{db,tables,secret}', null, 'userdb_pull returns A''s document only');
select is_empty(
  $$update public.user_databases set db = '{"version":1,"tables":{}}'
     where user_id = 'bbbbbbbb-0000-4000-8000-000000000002' returning 1$$,
  'A cannot update B''s row'
);
select throws_ok(
  $$update public.user_databases set user_id = 'bbbbbbbb-0000-4000-8000-000000000002'
     where user_id = 'aaaaaaaa-0000-4000-8000-000000000001'$$,
  '42501', null,
  'A cannot move their row onto B'
);
select throws_ok(
  $$insert into public.user_databases (user_id) values ('cccccccc-0000-4000-8000-000000000003')$$,
  '42501', null,
  'A cannot insert a row for another user'
);
select throws_ok(
  $$delete from public.user_databases where user_id = 'bbbbbbbb-0000-4000-8000-000000000002'$$,
  '42501', null,
  'A cannot delete rows'
);
select throws_ok('truncate public.user_databases', '42501', null, 'A cannot truncate');
select lives_ok(
  $$select public.userdb_set('{tables,secret}', '{"schema":{"fields":[],"primaryKey":[]},"rows":[]}')$$,
  'A writes to their own document'
);
reset role;

select is(
  (select db::text || updated_at::text from public.user_databases where user_id = 'bbbbbbbb-0000-4000-8000-000000000002'),
  current_setting('test.b_before'),
  'B''s document is unchanged by everything A did'
);

-- anon.
set local role anon;
select set_config('request.jwt.claims', '{"role":"anon"}', true);
select throws_ok('select public.userdb_init()', '42501', null, 'anon cannot call userdb_init');
select throws_ok($$select public.userdb_get('{}')$$, '42501', null, 'anon cannot call userdb_get');
select throws_ok($$select public.userdb_set('{version}', '1')$$, '42501', null, 'anon cannot call userdb_set');
select throws_ok($$select public.userdb_patch('[]', now(), 'c', 1)$$, '42501', null, 'anon cannot call userdb_patch');
select throws_ok('select public.userdb_pull()', '42501', null, 'anon cannot call userdb_pull');
select throws_ok('select * from public.user_databases', '42501', null, 'anon cannot read the table');
reset role;

-- service_role.
set local role service_role;
select set_config('request.jwt.claims', '{"role":"service_role"}', true);
select is((select count(*)::int from public.user_databases), 2, 'service_role sees every row');
select throws_ok('select public.userdb_init()', '42501', null,
  'without a sub claim the functions refuse (no user to act for)');
select set_config('request.jwt.claims', '{"sub":"cccccccc-0000-4000-8000-000000000003","role":"service_role"}', true);
select is(public.userdb_init() -> 'db', '{"version":1,"tables":{}}'::jsonb,
  'service_role can act for a user given in sub');
reset role;

-- The document goes with its auth user.
delete from auth.users where id = 'bbbbbbbb-0000-4000-8000-000000000002';
select is_empty(
  $$select 1 from public.user_databases where user_id = 'bbbbbbbb-0000-4000-8000-000000000002'$$,
  'deleting the auth user deletes the document'
);
select is((select count(*)::int from public.user_databases), 2, 'the other documents remain');

select * from finish();
rollback;
