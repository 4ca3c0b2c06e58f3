-- userdb: userdb_patch (conflicts, exactly-once, RFC 6902 subset), the token, the limits.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(46);

insert into auth.users (id, aud, role, email) values
  ('dddddddd-0000-4000-8000-000000000004', 'authenticated', 'authenticated', 'd@example.test'),
  ('eeeeeeee-0000-4000-8000-000000000005', 'authenticated', 'authenticated', 'e@example.test');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"dddddddd-0000-4000-8000-000000000004","role":"authenticated"}', true);

-- init / set / pull -------------------------------------------------------------------

select is(public.userdb_init() -> 'db', '{"version":1,"tables":{}}'::jsonb, 'userdb_init creates the default document');
select is(public.userdb_init() ->> 'updated_at', public.userdb_init() ->> 'updated_at', 'userdb_init is idempotent');
select set_config('test.t0', (public.userdb_init() ->> 'updated_at'), true);

select set_config('test.t1', public.userdb_set('{tables,projects}',
  '{"schema":{"fields":[{"name":"id","type":"string"},{"name":"title","type":"string"}],"primaryKey":["id"]},
    "rows":[["p1","One"],["p2","Two"],["p3","Three"]]}')::text, true);
select cmp_ok(current_setting('test.t1')::timestamptz, '>', current_setting('test.t0')::timestamptz,
  'userdb_set (two arguments, as in the original setup) returns a newer token');
select is(public.userdb_get('{tables,projects,rows,1}'), '["p2","Two"]'::jsonb, 'userdb_get reads a path');
select is(public.userdb_pull(current_setting('test.t1')::timestamptz), null, 'userdb_pull(since = current) is null');
select is(public.userdb_pull(current_setting('test.t0')::timestamptz) -> 'db' -> 'tables' -> 'projects' -> 'rows' -> 0,
  '["p1","One"]'::jsonb, 'userdb_pull(older) returns the document');
select is((public.userdb_pull() ->> 'updated_at')::timestamptz, current_setting('test.t1')::timestamptz,
  'userdb_pull returns the current token');

select throws_ok(
  format($$select public.userdb_set('{version}', '2', %L)$$, current_setting('test.t0')),
  'PT409', null, 'userdb_set with a stale token conflicts');
select throws_ok($$select public.userdb_set('{}', '{"version":1}')$$, '22023', null,
  'userdb_set cannot drop the tables member');

-- patch: apply, conflict, exactly-once -------------------------------------------------

select is(
  (public.userdb_patch('[{"op":"replace","path":"/tables/projects/rows/0/1","value":"Uno"}]',
                       current_setting('test.t1')::timestamptz, 'c1', 1)) -> 'applied',
  'true'::jsonb, 'a batch with the current token applies');
select set_config('test.t2', (public.userdb_pull() ->> 'updated_at'), true);
select is(public.userdb_get('{tables,projects,rows,0,1}'), '"Uno"'::jsonb, 'the edit is in the document');

-- A stale token: PT409 with the current token in DETAIL, nothing changed.
create function pg_temp.sqlstate_and_detail(sql text) returns text language plpgsql as $$
declare v_state text; v_detail text;
begin
  execute sql;
  return 'no error';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_detail = pg_exception_detail;
  return v_state || ' ' || v_detail;
end $$;
reset role;
grant execute on function pg_temp.sqlstate_and_detail(text) to authenticated;
set local role authenticated;
select is(
  pg_temp.sqlstate_and_detail(format(
    $$select public.userdb_patch('[{"op":"remove","path":"/tables/projects"}]', %L, 'c1', 2)$$,
    current_setting('test.t1'))),
  'PT409 ' || (to_json(current_setting('test.t2')::timestamptz) #>> '{}'),
  'a stale token raises PT409 with the current token (ISO 8601) in DETAIL'
);
select isnt(public.userdb_get('{tables,projects}'), null, '... and changes nothing');
select throws_ok($$select public.userdb_patch('[]', null, 'c1', 2)$$, 'PT409', null, 'a null token always conflicts');

-- The same (client_id, batch_seq) again, with the old token: not applied again.
select is(
  public.userdb_patch('[{"op":"replace","path":"/tables/projects/rows/0/1","value":"Uno"}]',
                      current_setting('test.t1')::timestamptz, 'c1', 1),
  jsonb_build_object('applied', false, 'updated_at', current_setting('test.t2')::timestamptz),
  'a replayed batch answers applied:false with the current token'
);
select is(
  (public.userdb_patch('[{"op":"remove","path":"/tables/projects"}]', current_setting('test.t2')::timestamptz, 'c1', 0))
    -> 'applied',
  'false'::jsonb, 'an older batch_seq is not applied');
select isnt(public.userdb_get('{tables,projects}'), null, '... and changes nothing');
select is(
  (public.userdb_patch('[{"op":"add","path":"/tables/projects/rows/-","value":["p4","Four"]}]',
                       current_setting('test.t2')::timestamptz, 'c2', 1)) -> 'applied',
  'true'::jsonb, 'another client''s first batch applies');
reset role;
select is((select jsonb_object_agg(key, value -> 0) from public.user_databases, jsonb_each(clients)
            where user_id = 'dddddddd-0000-4000-8000-000000000004'),
  '{"c1":1,"c2":1}'::jsonb, 'the last batch_seq per client is recorded (as [batch_seq, last seen])');
set local role authenticated;
select throws_ok(
  format($$select public.userdb_patch('[]', %L, 'c3', null)$$, public.userdb_pull() ->> 'updated_at'),
  '22023', null, 'client_id without batch_seq is rejected');

-- RFC 6902 subset (userdb.apply_patch is the pure core of userdb_patch) ------------------

select is(userdb.apply_patch('{"tables":{"t":{"rows":[[1],[2]]}}}', '[{"op":"add","path":"/tables/t/rows/1","value":[9]}]'),
  '{"tables":{"t":{"rows":[[1],[9],[2]]}}}', 'add on an array index inserts');
select is(userdb.apply_patch('{"tables":{"t":{"rows":[[1]]}}}', '[{"op":"add","path":"/tables/t/rows/1","value":[9]}]'),
  '{"tables":{"t":{"rows":[[1],[9]]}}}', 'add at index = length appends');
select is(userdb.apply_patch('{"tables":{"t":{"rows":[[1]]}}}', '[{"op":"add","path":"/tables/t/rows/-","value":[9]}]'),
  '{"tables":{"t":{"rows":[[1],[9]]}}}', 'add at "-" appends');
select is(userdb.apply_patch('{"tables":{}}', '[{"op":"add","path":"/tables/x","value":{}}]'),
  '{"tables":{"x":{}}}', 'add on a member sets it');
select is(userdb.apply_patch('{"tables":{"t":{"rows":[[1],[2],[3]]}}}',
    '[{"op":"remove","path":"/tables/t/rows/0"},{"op":"test","path":"/tables/t/rows/0","value":[2]}]'),
  '{"tables":{"t":{"rows":[[2],[3]]}}}', 'remove on an array index shifts the rest');
select is(userdb.apply_patch('{"tables":{"t":{"rows":[[1,"a"]]}}}', '[{"op":"replace","path":"/tables/t/rows/0/1","value":"b"}]'),
  '{"tables":{"t":{"rows":[[1,"b"]]}}}', 'replace a cell');
select is(userdb.apply_patch('{"tables":{"a/b~c":{}}}', '[{"op":"add","path":"/tables/a~1b~0c/x","value":1}]'),
  '{"tables":{"a/b~c":{"x":1}}}', '~1 and ~0 unescape to / and ~');
select is(userdb.apply_patch('{"tables":{},"v":{"a":[1,{"b":2}]}}', '[{"op":"test","path":"/v","value":{"a":[1,{"b":2}]}}]'),
  '{"tables":{},"v":{"a":[1,{"b":2}]}}', 'test compares JSON values');

select throws_like($$select userdb.apply_patch('{"tables":{}}', '[{"op":"add","path":"/x","value":1},{"op":"move","from":"/x","path":"/y"}]')$$,
  'userdb_patch: op 1 (move "/y"): unknown op%', 'an unknown op is rejected, naming op 1');
select throws_like($$select userdb.apply_patch('{"tables":{}}', '[{"op":"replace","path":"","value":{}}]')$$,
  'userdb_patch: op 0 (replace ""): the whole document%', 'the whole-document path is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{}}', '[{"op":"remove","path":"/tables/a~2"}]')$$,
  '%invalid "~" escape%', 'a bad pointer escape is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{"t":{"rows":[[1]]}}}', '[{"op":"remove","path":"/tables/t/rows/1"}]')$$,
  '%array index 1 is out of range (length 1)%', 'an index out of range is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{"t":{"rows":[[1],[2]]}}}', '[{"op":"remove","path":"/tables/t/rows/01"}]')$$,
  '%"01" is not an array index%', 'an index with a leading zero is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{}}', '[{"op":"remove","path":"/tables/t"}]')$$,
  '%no value at this path%', 'removing a missing member is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{}}', '[{"op":"replace","path":"/tables/t","value":1}]')$$,
  '%no value at this path%', 'replacing a missing member is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{"t":{"rows":[[1]]}}}', '[{"op":"test","path":"/tables/t/rows/0/0","value":2}]')$$,
  '%test failed%', 'a failed test is rejected');
select throws_like($$select userdb.apply_patch('{"tables":{"t":{"rows":[[1]]}}}',
    '[{"op":"remove","path":"/tables/t/rows/0"},{"op":"remove","path":"/tables/t/rows/5"},{"op":"bogus","path":"/x"}]')$$,
  'userdb_patch: op 1 %', 'the first failing op is the one named');

select set_config('test.t3', (public.userdb_pull() ->> 'updated_at'), true);
select throws_ok(
  format($$select public.userdb_patch('[{"op":"add","path":"/tables/projects/rows/-","value":[]},{"op":"remove","path":"/tables/nope"}]', %L, 'c2', 2)$$,
    current_setting('test.t3')),
  '22023', null, 'userdb_patch raises 22023 for a bad op');
select is(public.userdb_pull() ->> 'updated_at', current_setting('test.t3'), '... and applies nothing');
select throws_ok(
  format($$select public.userdb_patch('[{"op":"remove","path":"/tables"}]', %L, 'c2', 2)$$, current_setting('test.t3')),
  '22023', null, 'a patch that removes the tables member is rejected');

-- Size limit (lowered for this transaction, so the test holds whatever the project's limit)

reset role;
create or replace function userdb.max_bytes() returns bigint language sql immutable
  set search_path = '' as $$ select 100000::bigint $$;
set local role authenticated;
select throws_ok(
  format($$select public.userdb_patch(jsonb_build_array(jsonb_build_object('op', 'add', 'path', '/blob', 'value', repeat('x', 100000))), %L, 'c2', 2)$$,
    current_setting('test.t3')),
  'PT413', null, 'a document over the limit is rejected with PT413');
select throws_ok(
  $$update public.user_databases set db = db || jsonb_build_object('blob', repeat('x', 100000))$$,
  'PT413', null, 'direct writes are held to the limit too');
select throws_ok($$update public.user_databases set db = '{"version":1}'$$, '23514', null,
  'direct writes cannot break the shape');

-- The token -----------------------------------------------------------------------------

create function pg_temp.rapid_writes(n integer) returns boolean language plpgsql as $$
declare v_prev timestamptz; v_next timestamptz; v_ok boolean := true;
begin
  for i in 1 .. n loop
    v_next := public.userdb_set('{version}', '1');
    v_ok := v_ok and (v_prev is null or v_next > v_prev);
    v_prev := v_next;
  end loop;
  return v_ok;
end $$;
reset role;
grant execute on function pg_temp.rapid_writes(integer) to authenticated;
set local role authenticated;
select ok(pg_temp.rapid_writes(1000), 'updated_at strictly increases over 1,000 writes in one transaction');
select lives_ok($$update public.user_databases set updated_at = '2000-01-01'$$, 'a direct update of updated_at runs');
select cmp_ok((public.userdb_pull() ->> 'updated_at')::timestamptz, '>', current_setting('test.t3')::timestamptz,
  '... but the trigger keeps the token moving forward');

select * from finish();
rollback;
