import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DevServer, signJwt, startDevServer, statusForSqlState } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, signedUp } from './helpers.js';

let server: DevServer;
let alice: { sb: SupabaseClient; id: string; token: string };
let bob: { sb: SupabaseClient; id: string; token: string };

const FIXTURES = `
  create table public.fixture_items (id int primary key);
  create function public.fx_void() returns void language sql as $$ select $$;
  create function public.fx_echo(a int, b text default 'dflt') returns json language sql
    as $$ select json_build_object('a', a, 'b', b) $$;
  create function public.fx_ts() returns timestamptz language sql
    as $$ select '2026-01-02 03:04:05.123456+00'::timestamptz $$;
  create function public.fx_null() returns jsonb language sql as $$ select null::jsonb $$;
  create function public.fx_set() returns setof int language sql as $$ select generate_series(1, 3) $$;
  create function public.fx_double(x int) returns int language sql stable as $$ select x * 2 $$;
  create function public.fx_write() returns int language sql as $$ insert into public.fixture_items values (99) returning id $$;
  create function public.fx_raise(code text) returns void language plpgsql as $$
    begin raise exception using errcode = code, message = 'boom ' || code, detail = 'the detail', hint = 'the hint'; end $$;
  create function public.fx_unique() returns void language sql as $$
    insert into public.fixture_items values (1); insert into public.fixture_items values (1) $$;
  create function public.fx_private() returns int language sql as $$ select 1 $$;
  revoke execute on function public.fx_private() from public, anon, authenticated;
  create function public.fx_pgrst() returns void language plpgsql as $$
    begin raise sqlstate 'PGRST' using
      message = '{"code":"TEA","message":"short and stout","hint":"tip me over"}',
      detail = '{"status":418,"headers":{"X-Teapot":"yes"}}';
    end $$;
  create function public.fx_body(jsonb) returns jsonb language sql as $$ select $1 $$;
  create function public.fx_whoami() returns json language sql stable as $$
    select json_build_object('role', current_user, 'uid', auth.uid(), 'method', current_setting('request.method', true)) $$;
`;

beforeAll(async () => {
  server = await startDevServer({ port: 0, maxBodyBytes: 64 * 1024 });
  await server.db.exec(FIXTURES);
  alice = await signedUp(server);
  bob = await signedUp(server);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

async function raw(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    ...init,
    headers: { apikey: server.anonKey, 'content-type': 'application/json', ...init.headers },
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

describe('rpc happy paths', () => {
  it('calls functions with named arguments, defaults, and as the JWT role with its claims', async () => {
    expect((await alice.sb.rpc('fx_echo', { a: 1 })).data).toEqual({ a: 1, b: 'dflt' });
    expect((await alice.sb.rpc('fx_echo', { a: 2, b: 'x' })).data).toEqual({ a: 2, b: 'x' });
    expect((await alice.sb.rpc('fx_whoami')).data).toEqual({
      role: 'authenticated',
      uid: alice.id,
      method: 'POST',
    });
    expect((await client(server).rpc('fx_whoami')).data).toEqual({ role: 'anon', uid: null, method: 'POST' });
    expect((await client(server, server.serviceRoleKey).rpc('fx_whoami')).data).toMatchObject({
      role: 'service_role',
    });
  });

  it('answers 204 for a void function and supabase-js sees data null, error null', async () => {
    const res = await alice.sb.rpc('fx_void');
    expect(res).toMatchObject({ status: 204, data: null, error: null });
  });

  it('shapes results like PostgREST: scalars, null, sets, and timestamptz with microseconds', async () => {
    expect((await alice.sb.rpc('fx_ts')).data).toBe('2026-01-02T03:04:05.123456+00:00');
    expect(await alice.sb.rpc('fx_null')).toMatchObject({ status: 200, data: null, error: null });
    expect((await alice.sb.rpc('fx_set')).data).toEqual([1, 2, 3]);
    expect((await alice.sb.rpc('fx_body', { any: ['thing'] })).data).toEqual({ any: ['thing'] });
  });

  it('serves GET for stable functions and runs GET read-only (405 for a write)', async () => {
    expect((await alice.sb.rpc('fx_double', { x: 21 }, { get: true })).data).toBe(42);
    const write = await alice.sb.rpc('fx_write', {}, { get: true });
    expect(write.status).toBe(405);
    expect(write.error).toMatchObject({ code: '25006' });
  });

  it('runs the userdb contract: init, set, get, patch with exactly-once, pull, conflict', async () => {
    const init = await alice.sb.rpc('userdb_init');
    expect(init.error).toBeNull();
    expect(init.data).toMatchObject({ db: { version: 1, tables: {} } });
    const token = (init.data as { updated_at: string }).updated_at;
    expect(token).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);

    const table = { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, rows: [] };
    const set = await alice.sb.rpc('userdb_set', {
      path: ['tables', 'projects'],
      value: table,
      expected_updated_at: token,
    });
    expect(set.error).toBeNull();
    const afterSet = set.data as string;

    const stale = await alice.sb.rpc('userdb_set', {
      path: ['tables', 'x'],
      value: table,
      expected_updated_at: token,
    });
    expect(stale.status).toBe(409);
    expect(stale.error).toMatchObject({ code: 'PT409', details: afterSet });

    const ops = [{ op: 'add', path: '/tables/projects/rows/-', value: ['p1'] }];
    const patch = await alice.sb.rpc('userdb_patch', {
      ops,
      expected_updated_at: afterSet,
      client_id: 'c1',
      batch_seq: 1,
    });
    expect(patch.error).toBeNull();
    expect(patch.data).toMatchObject({ applied: true });
    const again = await alice.sb.rpc('userdb_patch', {
      ops,
      expected_updated_at: afterSet,
      client_id: 'c1',
      batch_seq: 1,
    });
    expect(again.data).toMatchObject({ applied: false });

    const rows = await alice.sb.rpc('userdb_get', { path: ['tables', 'projects', 'rows'] });
    expect(rows.data).toEqual([['p1']]);
    const pulled = await alice.sb.rpc('userdb_pull', { since: null });
    expect(pulled.data).toMatchObject({ db: { tables: { projects: { rows: [['p1']] } } } });

    const bad = await alice.sb.rpc('userdb_patch', {
      ops: [{ op: 'move', path: '/x' }],
      expected_updated_at: (patch.data as { updated_at: string }).updated_at,
      client_id: 'c1',
      batch_seq: 2,
    });
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ code: '22023' });
  });
});

describe('RLS over HTTP', () => {
  it("user A's token cannot read or change B's document through any rpc", async () => {
    await bob.sb.rpc('userdb_init');
    const secret = {
      schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] },
      rows: [['bob-secret']],
    };
    expect((await bob.sb.rpc('userdb_set', { path: ['tables', 'secret'], value: secret })).error).toBeNull();
    const before = await server.db.query<{ doc: string }>(
      'select db::text as doc from public.user_databases where user_id = $1',
      [bob.id],
    );

    const carol = await signedUp(server);
    const calls: [string, Record<string, unknown>][] = [
      ['userdb_get', { path: ['tables', 'secret'] }],
      ['userdb_get', { path: [] }],
      ['userdb_pull', { since: null }],
      ['userdb_init', {}],
      ['userdb_set', { path: ['tables', 'secret'], value: { hacked: true } }],
      [
        'userdb_patch',
        {
          ops: [{ op: 'remove', path: '/tables/secret' }],
          expected_updated_at: null,
          client_id: 'x',
          batch_seq: 1,
        },
      ],
    ];
    for (const [fn, args] of calls) {
      const res = await carol.sb.rpc(fn, args);
      expect(JSON.stringify(res.data ?? null)).not.toContain('bob-secret');
    }
    const anon = client(server);
    for (const [fn, args] of calls) {
      const res = await anon.rpc(fn, args);
      expect(res.error).not.toBeNull();
    }
    const after = await server.db.query<{ doc: string }>(
      'select db::text as doc from public.user_databases where user_id = $1',
      [bob.id],
    );
    expect(after).toEqual(before);
  });
});

describe('error mapping', () => {
  it.each([
    ['P0001', 400],
    ['22023', 400],
    ['22P02', 400],
    ['PT409', 409],
    ['PT413', 413],
    ['PT404', 404],
    ['40001', 500],
    ['57014', 500],
    ['XX000', 500],
    ['53100', 503],
  ])('SQLSTATE %s answers %i with {code, message, details, hint}', async (code, status) => {
    // An internal error (class XX) makes the dev server reopen PGlite from its committed data and
    // say so with a process warning: kept here instead of printed.
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const res = await alice.sb.rpc('fx_raise', { code });
      expect(res.status).toBe(status);
      expect(res.error).toEqual({ code, message: `boom ${code}`, details: 'the detail', hint: 'the hint' });
    } finally {
      warned.mockRestore();
    }
  });

  it("gives full response control to raise sqlstate 'PGRST', as PostgREST does", async () => {
    const res = await alice.sb.rpc('fx_pgrst');
    expect(res.status).toBe(418);
    expect(res.error).toEqual({
      code: 'TEA',
      message: 'short and stout',
      details: null,
      hint: 'tip me over',
    });
    const direct = await raw('/rest/v1/rpc/fx_pgrst', {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(direct.headers.get('x-teapot')).toBe('yes');
  });

  it('maps 23505 to 409', async () => {
    const res = await alice.sb.rpc('fx_unique');
    expect(res.status).toBe(409);
    expect(res.error?.code).toBe('23505');
  });

  it('maps 42501 to 401 for anonymous and 403 for an authenticated user', async () => {
    const anon = await client(server).rpc('fx_private');
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
    const authed = await alice.sb.rpc('fx_private');
    expect(authed.status).toBe(403);
    expect(authed.error?.code).toBe('42501');
  });

  it('switches only to roles granted to authenticator, as PostgREST logged in as authenticator', async () => {
    const superuser = signJwt(
      { role: 'postgres', sub: alice.id, exp: Math.floor(Date.now() / 1000) + 60 },
      server.jwtSecret,
    );
    const denied = await raw('/rest/v1/rpc/fx_whoami', { headers: { authorization: `Bearer ${superuser}` } });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: '42501', message: 'permission denied to set role "postgres"' });
    const ghost = signJwt({ role: 'ghost', exp: Math.floor(Date.now() / 1000) + 60 }, server.jwtSecret);
    const missing = await raw('/rest/v1/rpc/fx_whoami', { headers: { authorization: `Bearer ${ghost}` } });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: '22023', message: 'role "ghost" does not exist' });
  });

  it('follows the PostgREST status table', () => {
    expect(statusForSqlState('23503', true)).toBe(409);
    expect(statusForSqlState('25006', true)).toBe(405);
    expect(statusForSqlState('28000', true)).toBe(403);
    expect(statusForSqlState('08006', true)).toBe(503);
    expect(statusForSqlState('42883', true)).toBe(404);
    expect(statusForSqlState('P0002', true)).toBe(500);
    expect(statusForSqlState('PTxyz', true)).toBe(500);
  });

  it('answers 404 PGRST202 for an unknown function or unknown arguments', async () => {
    const unknown = await alice.sb.rpc('no_such_function');
    expect(unknown.status).toBe(404);
    expect(unknown.error).toMatchObject({
      code: 'PGRST202',
      message: 'Could not find the function public.no_such_function without parameters in the schema cache',
      hint: null,
    });
    const wrongArgs = await alice.sb.rpc('fx_echo', { z: 1 });
    expect(wrongArgs.status).toBe(404);
    expect(wrongArgs.error).toMatchObject({
      code: 'PGRST202',
      message: 'Could not find the function public.fx_echo(z) in the schema cache',
      hint: 'Perhaps you meant to call the function public.fx_echo(a, b)',
    });
    const missingRequired = await alice.sb.rpc('fx_echo', { b: 'x' });
    expect(missingRequired.error?.code).toBe('PGRST202');
  });
});

describe('malformed input', () => {
  it('rejects bad JSON with 400 PGRST102 and keeps serving', async () => {
    const res = await raw('/rest/v1/rpc/fx_echo', {
      body: '{"a":',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      code: 'PGRST102',
      details: null,
      hint: null,
      message: 'Empty or invalid json',
    });
    expect((await alice.sb.rpc('fx_echo', { a: 1 })).error).toBeNull();
  });

  it('rejects a missing or unknown apikey as the API gateway does', async () => {
    const missing = await fetch(`${server.url}/rest/v1/rpc/fx_void`, { method: 'POST' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ message: 'No API key found in request' });
    const wrong = await raw('/rest/v1/rpc/fx_void', { headers: { apikey: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ message: 'Invalid API key' });
  });

  it('answers 401 PGRST301 for a forged or garbled JWT and PGRST303 for an expired one', async () => {
    const forged = signJwt({ role: 'authenticated', sub: bob.id }, 'not-the-secret');
    const r1 = await client(server, server.anonKey)
      .rpc('fx_whoami', {}, {})
      .setHeader('Authorization', `Bearer ${forged}`);
    expect(r1.status).toBe(401);
    expect(r1.error).toMatchObject({ code: 'PGRST301' });

    const garbled = await raw('/rest/v1/rpc/fx_whoami', { headers: { authorization: 'Bearer abc.def' } });
    expect(garbled.status).toBe(401);
    expect(garbled.body).toMatchObject({ code: 'PGRST301' });
    expect(garbled.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);

    const expired = signJwt(
      { role: 'authenticated', sub: alice.id, exp: Math.floor(Date.now() / 1000) - 60 },
      server.jwtSecret,
    );
    const r2 = await raw('/rest/v1/rpc/fx_whoami', { headers: { authorization: `Bearer ${expired}` } });
    expect(r2.status).toBe(401);
    expect(r2.body).toEqual({ code: 'PGRST303', details: null, hint: null, message: 'JWT expired' });
    expect((await alice.sb.rpc('fx_whoami')).error).toBeNull();
  });

  it('rejects an oversized body with 413 and keeps serving', async () => {
    const big = 'x'.repeat(70 * 1024);
    const res = await alice.sb.rpc('fx_body', { big });
    expect(res.status).toBe(413);
    expect((await alice.sb.rpc('fx_echo', { a: 3 })).data).toEqual({ a: 3, b: 'dflt' });
  });

  it('answers CORS preflights and unknown routes', async () => {
    const pre = await fetch(`${server.url}/rest/v1/rpc/fx_void`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:5173',
        'access-control-request-headers': 'apikey, authorization, content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(pre.headers.get('access-control-allow-headers')).toBe('apikey, authorization, content-type');
    const table = await raw('/rest/v1/user_databases', { method: 'GET' });
    expect(table.status).toBe(404);
    expect(table.body).toMatchObject({ code: 'PGRST205' });
    const nowhere = await fetch(`${server.url}/nowhere`);
    expect(nowhere.status).toBe(404);
  });
});

describe('response compression', () => {
  /** One raw HTTP/1.1 request (node:http sends no Accept-Encoding unless told), body undecoded. */
  function rawHttp(
    path: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; bytes: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        `${server.url}${path}`,
        {
          method: 'POST',
          headers: {
            apikey: server.anonKey,
            authorization: `Bearer ${alice.token}`,
            'content-type': 'application/json',
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const big = JSON.stringify({ rows: Array.from({ length: 400 }, (_, i) => [`key-${i}`, `title ${i}`, i]) });

  it('gzips a large answer when the client accepts gzip, and only then', async () => {
    const plain = await rawHttp('/rest/v1/rpc/fx_body', big, {});
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(Number(plain.headers['content-length'])).toBe(plain.bytes.byteLength);
    const zipped = await rawHttp('/rest/v1/rpc/fx_body', big, { 'accept-encoding': 'br, gzip;q=0.8' });
    expect(zipped.status).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(zipped.headers['content-length'])).toBe(zipped.bytes.byteLength);
    expect(zipped.bytes.byteLength).toBeLessThan(plain.bytes.byteLength / 3);
    expect(gunzipSync(zipped.bytes).toString('utf8')).toBe(plain.bytes.toString('utf8'));
    // refused with q=0, or not offered: sent as is
    for (const ae of ['gzip;q=0', 'br, deflate', 'identity', '*;q=0']) {
      const r = await rawHttp('/rest/v1/rpc/fx_body', big, { 'accept-encoding': ae });
      expect(r.headers['content-encoding'], ae).toBeUndefined();
      expect(r.bytes.toString('utf8')).toBe(plain.bytes.toString('utf8'));
    }
    expect(
      (await rawHttp('/rest/v1/rpc/fx_body', big, { 'accept-encoding': '*' })).headers['content-encoding'],
    ).toBe('gzip');
  });

  it('sends a small answer as it is', async () => {
    const r = await rawHttp('/rest/v1/rpc/fx_body', '{"a":1}', { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(r.bytes.toString('utf8'))).toEqual({ a: 1 });
  });

  it('is decoded transparently by supabase-js', async () => {
    const { data, error } = await alice.sb.rpc('fx_body', JSON.parse(big) as Record<string, unknown>);
    expect(error).toBeNull();
    expect(data).toEqual(JSON.parse(big));
  });
});
