-- userdb: delta sync. The change log, userdb_pull(since, delta), Broadcast, client_id.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(18);

insert into auth.users (id, aud, role, email) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'authenticated', 'authenticated', 'a@example.test'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'authenticated', 'authenticated', 'b@example.test');

-- A: a document with a table, then two patches.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-4000-8000-00000000000a","role":"authenticated"}', true);
select public.userdb_init();
select set_config('test.t0', public.userdb_set('{tables,t}',
  ('{"schema":{"fields":[],"primaryKey":[]},"rows":[' || repeat('["a long enough row of text"],', 40) || '["x"]]}')::jsonb)::text, true);
select set_config('test.t1', (public.userdb_patch('[{"op":"replace","path":"/tables/t/rows/0/0","value":"one"}]',
  current_setting('test.t0')::timestamptz, 'dev', 1) ->> 'updated_at'), true);
select set_config('test.t2', (public.userdb_patch('[{"op":"add","path":"/tables/t/rows/-","value":["two"]}]',
  current_setting('test.t1')::timestamptz, 'dev', 2) ->> 'updated_at'), true);

select is(
  jsonb_array_length(public.userdb_pull(current_setting('test.t0')::timestamptz, true) -> 'changes'),
  2,
  'a delta pull answers the two changes since t0'
);
select is(
  public.userdb_pull(current_setting('test.t0')::timestamptz, true) #> '{changes,0}',
  jsonb_build_object('before', current_setting('test.t0')::timestamptz, 'after', current_setting('test.t1')::timestamptz,
                     'ops', '[{"op":"replace","path":"/tables/t/rows/0/0","value":"one"}]'::jsonb,
                     'client_id', 'dev', 'batch_seq', 1),
  'the first change carries before, after, ops, client_id and batch_seq'
);
select is(
  public.userdb_pull(current_setting('test.t0')::timestamptz, true) #> '{changes,1}',
  jsonb_build_object('after', current_setting('test.t2')::timestamptz,
                     'ops', '[{"op":"add","path":"/tables/t/rows/-","value":["two"]}]'::jsonb,
                     'client_id', 'dev', 'batch_seq', 2),
  'a later change carries no before: it is the previous after'
);
select is(
  public.userdb_pull(current_setting('test.t0')::timestamptz) ? 'db',
  true,
  'the one-argument call answers the whole document, as before'
);
select is(public.userdb_pull(current_setting('test.t2')::timestamptz, true), null, 'nothing newer: null');
select results_eq(
  $$select count(*)::int from userdb.changes$$,
  array[3],
  'A reads their own log entries (the set and the two patches)'
);
select throws_ok(
  $$insert into userdb.changes (user_id, before, after, ops, bytes, total)
    values ('aaaaaaaa-0000-4000-8000-00000000000a', now(), now(), '[]', 2, 2)$$,
  '42501', null, 'users cannot write the log'
);
select throws_ok(
  $$delete from userdb.changes$$,
  '42501', null, 'users cannot delete log entries'
);
select throws_ok(
  $$select public.userdb_patch('[]', current_setting('test.t2')::timestamptz, repeat('x', 129), 3)$$,
  '22023', null, 'a client_id over 128 characters is rejected'
);

-- A direct write through the table is logged as a reset: a delta across it is the document.
update public.user_databases set db = db where user_id = 'aaaaaaaa-0000-4000-8000-00000000000a';
select is(
  public.userdb_pull(current_setting('test.t0')::timestamptz, true) ? 'db',
  true,
  'a chain holding a reset answers the whole document'
);

-- Broadcast: A may receive on their own topic only; nobody may send.
select set_config('realtime.topic', 'userdb:aaaaaaaa-0000-4000-8000-00000000000a', true);
select cmp_ok(
  (select count(*)::int from realtime.messages where topic = 'userdb:aaaaaaaa-0000-4000-8000-00000000000a'),
  '>=', 4, 'A receives the broadcasts of their topic'
);
select throws_ok(
  $$insert into realtime.messages (topic, extension, event, payload, private)
    values ('userdb:aaaaaaaa-0000-4000-8000-00000000000a', 'broadcast', 'change', '{}', true)$$,
  '42501', null, 'A cannot send on their topic'
);
select set_config('realtime.topic', 'userdb:bbbbbbbb-0000-4000-8000-00000000000b', true);
select set_config('request.jwt.claims', '{"sub":"bbbbbbbb-0000-4000-8000-00000000000b","role":"authenticated"}', true);
select public.userdb_init();
select public.userdb_set('{version}', '1');
select set_config('realtime.topic', 'userdb:aaaaaaaa-0000-4000-8000-00000000000a', true);
select is(
  (select count(*)::int from realtime.messages),
  0,
  'B receives nothing on A''s topic'
);
select is((select count(*)::int from userdb.changes), 1, 'B reads only their own log entry');
reset role;

select is(
  (select payload -> 'ops' from realtime.messages
    where topic = 'userdb:aaaaaaaa-0000-4000-8000-00000000000a'
    order by (payload ->> 'after')::timestamptz desc limit 1),
  'null'::jsonb,
  'the broadcast of a reset carries ops null'
);
select ok(
  exists (select 1 from realtime.messages
           where topic = 'userdb:aaaaaaaa-0000-4000-8000-00000000000a' and event = 'change' and private
             and payload -> 'ops' = '[{"op":"add","path":"/tables/t/rows/-","value":["two"]}]'),
  'the broadcast of a patch carries its ops, privately, as event change'
);

set local role anon;
select set_config('realtime.topic', 'userdb:aaaaaaaa-0000-4000-8000-00000000000a', true);
select is((select count(*)::int from realtime.messages), 0, 'anon receives nothing');
reset role;

select is(
  (select attcompression from pg_catalog.pg_attribute
    where attrelid = 'public.user_databases'::regclass and attname = 'db'),
  'l'::"char",
  'documents are compressed with lz4 (PostgreSQL built with lz4)'
);

select * from finish();
rollback;
