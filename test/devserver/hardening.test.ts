import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jsonTooDeep } from '../../src/devserver/http.js';
import { type DevServer, signJwt, startDevServer, verifyJwt } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, signedUp, subscribed } from './helpers.js';

/**
 * What an attacker or a careless client can send to the dev server's HTTP side, on
 * PGlite in memory always and on PostgreSQL when DATABASE_URL is set (required in CI).
 */
interface Engine {
  name: string;
  open(): Promise<{ database: string; close(): Promise<void> }>;
}

const databaseUrl = process.env.DATABASE_URL;
if (process.env.CI !== undefined && process.env.CI !== '' && databaseUrl === undefined) {
  throw new Error('DATABASE_URL must be set in CI: the dev server is tested on PostgreSQL too');
}

const engines: Engine[] = [
  { name: 'PGlite in memory', open: async () => ({ database: 'memory', close: async () => undefined }) },
];
if (databaseUrl !== undefined) {
  engines.push({
    name: 'PostgreSQL (DATABASE_URL)',
    async open() {
      const name = `userdb_hardening_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      const url = new URL(databaseUrl);
      url.pathname = `/${name}`;
      return {
        database: url.toString(),
        async close() {
          await admin.query(`drop database if exists ${name} with (force)`);
          await admin.end();
        },
      };
    },
  });
}

const FIXTURES = `
  create table public.hh_items (id int primary key);
  grant all on public.hh_items to anon, authenticated;
  create function public.hh_echo(a int) returns int language sql as $$ select a $$;
  create function public.hh_body(jsonb) returns jsonb language sql as $$ select $1 $$;
  create function public.hh_setting(name text) returns text language sql stable
    as $$ select current_setting(name) $$;
  create function public.hh_sleep(seconds float8) returns void language sql
    as $$ select pg_sleep(seconds) $$;
  create function public.hh_write_then_sleep(id int, seconds float8) returns void language sql
    as $$ insert into public.hh_items values (id); select pg_sleep(seconds) $$;
`;

const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

/** A raw HTTP request (fetch normalises some of what an attacker sends). */
function rawRequest(
  server: DevServer,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method,
        path: options.path,
        headers: { apikey: server.anonKey, ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function post(server: DevServer, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { apikey: server.anonKey, 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

/** Signs `payload` under `header` with HMAC-SHA-256 (whatever the header says). */
function forge(header: unknown, payload: unknown, secret: string): string {
  const enc = (v: unknown) =>
    Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

describe.each(engines)('dev server hardening on $name', (engine) => {
  let server: DevServer;
  let handle: Awaited<ReturnType<Engine['open']>>;

  beforeAll(async () => {
    handle = await engine.open();
    server = await startDevServer({ port: 0, database: handle.database, maxBodyBytes: 256 * 1024 });
    await server.db.exec(FIXTURES);
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
    await handle?.close();
  });

  describe('JSON nesting depth', () => {
    it('refuses a body nested 10,000 levels deep with 400 before any SQL, and keeps serving', async () => {
      const body = `{"path":[],"value":${deep(10_000)}}`;
      const res = await post(server, '/rest/v1/rpc/userdb_set', body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        code: 'PGRST102',
        details: 'Arrays and objects in the request body may nest at most 512 levels deep.',
        hint: null,
        message: 'JSON nested deeper than 512 levels',
      });
      // Brackets inside strings are text, not nesting.
      const a = await signedUp(server);
      expect((await a.sb.rpc('hh_body', { s: deep(10_000) })).data).toEqual({ s: deep(10_000) });
      const signup = await post(server, '/auth/v1/signup', JSON.stringify({ data: JSON.parse(deep(600)) }));
      expect(signup.status).toBe(400);
      expect(signup.body).toMatchObject({ error_code: 'bad_json' });
      expect((await client(server).auth.signInAnonymously()).error).toBeNull();
    });

    it('stores and serves a value nested as deep as the limit allows', async () => {
      const a = await signedUp(server);
      expect((await a.sb.rpc('userdb_init')).error).toBeNull();
      const value = JSON.parse(deep(500)) as unknown;
      const set = await a.sb.rpc('userdb_set', {
        path: ['tables', 't'],
        value: { schema: { fields: [], primaryKey: [] }, rows: [], deep: value },
      });
      expect(set.error).toBeNull();
      const got = await a.sb.rpc('userdb_get', { path: ['tables', 't', 'deep'] });
      expect(got.error).toBeNull();
      expect(JSON.stringify(got.data)).toBe(deep(500));
    });
  });

  describe('statement_timeout per role', () => {
    it('gives anon 3s and authenticated 8s as hosted Supabase, applied per request', async () => {
      const rows = await server.db.query<{ role: string; config: string }>(
        `select r.rolname as role, array_to_string(s.setconfig, ',') as config
         from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
         where s.setdatabase = 0 and r.rolname in ('anon', 'authenticated') order by 1`,
      );
      expect(rows).toEqual([
        { role: 'anon', config: expect.stringContaining('statement_timeout=3s') },
        { role: 'authenticated', config: expect.stringContaining('statement_timeout=8s') },
      ]);
      const a = await signedUp(server);
      expect((await client(server).rpc('hh_setting', { name: 'statement_timeout' })).data).toBe('3s');
      expect((await a.sb.rpc('hh_setting', { name: 'statement_timeout' })).data).toBe('8s');
    });

    it("answers a statement over the role's timeout with PostgREST's 500 57014 and commits nothing", async () => {
      const a = await signedUp(server);
      const setTimeout = async (value: string | null) => {
        await server.db.exec(
          `do $$ begin execute format(${
            value === null
              ? `'alter role authenticated in database %I reset statement_timeout', current_database()`
              : `'alter role authenticated in database %I set statement_timeout = %L', current_database(), '${value}'`
          }); end $$; notify pgrst, 'reload config'`,
        );
        const want = value ?? '8s';
        for (let i = 0; i < 200; i++) {
          if ((await a.sb.rpc('hh_setting', { name: 'statement_timeout' })).data === want) return;
          await new Promise((resolve) => globalThis.setTimeout(resolve, 10)); // NOTIFY is asynchronous on PostgreSQL
        }
        throw new Error(`statement_timeout never became ${want}`);
      };
      await setTimeout('300ms');
      try {
        const slow = await a.sb.rpc('hh_write_then_sleep', { id: 1, seconds: 1 });
        expect(slow.status).toBe(500);
        expect(slow.error).toEqual({
          code: '57014',
          details: null,
          hint: null,
          message: 'canceling statement due to statement timeout',
        });
        expect(await server.db.query('select id from public.hh_items where id = 1')).toEqual([]);
        const fast = await a.sb.rpc('hh_write_then_sleep', { id: 2, seconds: 0 });
        expect(fast.error).toBeNull();
        expect(await server.db.query('select id from public.hh_items where id = 2')).toEqual([{ id: 2 }]);
      } finally {
        await setTimeout(null);
      }
    });
  });

  describe('request bodies over the size limit', () => {
    it('answers 413 to supabase-js, not a network error, however large the body', async () => {
      const a = await signedUp(server);
      for (const size of [300 * 1024, 4 * 1024 * 1024]) {
        const res = await a.sb.rpc('hh_body', { big: 'x'.repeat(size) });
        expect(res.status).toBe(413);
        expect(res.error).toMatchObject({ code: 'PGRST413' });
      }
      expect((await a.sb.rpc('hh_echo', { a: 7 })).data).toBe(7);
    });

    it('answers 413 to a client that reads the answer only after sending its whole body', async () => {
      // Answering at once and closing made such a client (browsers may be one) fail with
      // EPIPE/ECONNRESET: the 413 was lost with the reset connection.
      const url = new URL(server.url);
      const answers = await Promise.all(
        [0, 1, 2].map(
          () =>
            new Promise<string>((resolve) => {
              const socket = connect(Number(url.port), url.hostname);
              socket.pause();
              const chunks: Buffer[] = [];
              socket.on('data', (c: Buffer) => chunks.push(c));
              socket.on('error', (e) => resolve(`error ${e.message}`));
              socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
              const total = 8 * 1024 * 1024;
              socket.write(
                `POST /rest/v1/rpc/hh_body HTTP/1.1\r\nHost: x\r\napikey: ${server.anonKey}\r\n` +
                  `content-type: application/json\r\ncontent-length: ${total}\r\nconnection: close\r\n\r\n`,
              );
              const chunk = Buffer.alloc(256 * 1024, 120);
              let sent = 0;
              const next = () => {
                if (sent >= total) {
                  setTimeout(() => socket.resume(), 200);
                  return;
                }
                sent += chunk.length;
                socket.write(chunk, (error) => {
                  if (error === undefined || error === null) setImmediate(next);
                });
              };
              next();
            }),
        ),
      );
      for (const answer of answers) {
        expect(answer).toMatch(/^HTTP\/1\.1 413 /);
        expect(answer).toContain('"code":"PGRST413"');
      }
    });

    it('answers 413 to a chunked upload without a length, and to an oversized sign-up', async () => {
      const chunked = await rawRequest(server, {
        method: 'POST',
        path: '/rest/v1/rpc/hh_body',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        body: JSON.stringify({ big: 'y'.repeat(1024 * 1024) }),
      });
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.body)).toMatchObject({ code: 'PGRST413' });
      const signup = await client(server).auth.signUp({
        email: 'big@example.com',
        password: 'password-123',
        options: { data: { big: 'z'.repeat(2 * 1024 * 1024) } },
      });
      expect(signup.error).toMatchObject({ status: 413 });
    });
  });

  describe('request paths', () => {
    it('answers 400 PGRST100 for a malformed percent-encoding, and 404 for odd paths', async () => {
      const res = await post(server, '/rest/v1/rpc/%E0%A4%A', '{}');
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'PGRST100',
        message: 'Malformed percent-encoding in the request path',
      });
      const table = await rawRequest(server, { method: 'GET', path: '/rest/v1/%ZZ' });
      expect(table.status).toBe(400);
      // Paths that `new URL(path, base)` reads as a host (or throws on) are paths.
      for (const path of ['//', '///', '//:99999/', '//[::1']) {
        const odd = await rawRequest(server, { method: 'GET', path });
        expect(odd.status, path).toBe(404);
        expect(JSON.parse(odd.body)).toEqual({ message: 'no Route matched with those values' });
      }
      expect((await client(server).rpc('hh_echo', { a: 1 })).data).toBe(1);
    });

    it('refuses a WebSocket upgrade to a path that does not parse, and keeps serving', async () => {
      const url = new URL(server.url);
      for (const path of ['//', '//[::1']) {
        const closed = await new Promise<string>((resolve) => {
          const socket = connect(Number(url.port), url.hostname);
          let answer = '';
          socket.on('data', (chunk: Buffer) => {
            answer += chunk.toString();
          });
          socket.on('error', () => resolve(answer));
          socket.on('close', () => resolve(answer));
          socket.write(
            `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          );
        });
        expect(closed, path).not.toContain('101 Switching Protocols');
      }
      expect((await client(server).rpc('hh_echo', { a: 1 })).data).toBe(1);
    });

    it('answers PGRST202 for unknown arguments, as PostgREST does', async () => {
      const res = await client(server).rpc('hh_echo', { a: 1, nope: 2 });
      expect(res.status).toBe(404);
      expect(res.error).toMatchObject({
        code: 'PGRST202',
        message: 'Could not find the function public.hh_echo(a, nope) in the schema cache',
      });
    });
  });

  describe('other requests an attacker or a careless client sends', () => {
    it('treats a query parameter named __proto__ as an argument (PGRST202), not as a prototype', async () => {
      const res = await rawRequest(server, {
        method: 'GET',
        path: '/rest/v1/rpc/hh_setting?name=role&__proto__=x',
      });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body)).toMatchObject({
        code: 'PGRST202',
        message: 'Could not find the function public.hh_setting(__proto__, name) in the schema cache',
      });
    });

    it('answers 431 to headers over the limit and 400 to an unparsable request, not a reset', async () => {
      const huge = await rawRequest(server, {
        method: 'GET',
        path: '/rest/v1/rpc/hh_setting?name=role',
        headers: { 'x-padding': 'p'.repeat(32 * 1024) },
      });
      expect(huge.status).toBe(431);
      const url = new URL(server.url);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', reject);
        socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
        socket.write('GET /rest/v1/rpc/x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect((await client(server).rpc('hh_echo', { a: 5 })).data).toBe(5);
    });

    it('refuses an email over 255 bytes as GoTrue does instead of failing in SQL', async () => {
      const sb = client(server);
      const res = await sb.auth.signUp({ email: `${'a'.repeat(300)}@example.com`, password: 'password-123' });
      expect(res.error).toMatchObject({
        status: 400,
        code: 'validation_failed',
        message: 'An email address is too long',
      });
      const a = await signedUp(server);
      const update = await a.sb.auth.updateUser({ email: `${'b'.repeat(300)}@example.com` });
      expect(update.error).toMatchObject({ status: 400, code: 'validation_failed' });
    });
  });

  describe('JWT verification', () => {
    const call = async (token: string) =>
      post(server, '/rest/v1/rpc/hh_setting', JSON.stringify({ name: 'role' }), {
        authorization: `Bearer ${token}`,
      });
    const claims = () => ({
      role: 'authenticated',
      sub: '00000000-0000-0000-0000-000000000001',
      exp: now() + 600,
    });

    it('accepts the canonical token and refuses every other spelling of its signature', async () => {
      // A signature holding both URL-safe characters, so the standard alphabet spells it differently.
      let token = '';
      for (let i = 0; ; i++) {
        token = signJwt({ ...claims(), i }, server.jwtSecret);
        const sig = token.split('.')[2]!;
        if (sig.includes('-') && sig.includes('_')) break;
      }
      expect((await call(token)).status).toBe(200);
      const [head, payload, sig] = token.split('.') as [string, string, string];
      const last = sig.at(-1)!;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      // The last of 43 characters carries 4 bits and 2 unused ones: set an unused bit.
      const trailing = alphabet[alphabet.indexOf(last) ^ 1]!;
      const variants = {
        padded: `${sig}=`,
        'standard alphabet': sig.replaceAll('-', '+').replaceAll('_', '/'),
        'nonzero trailing bits': sig.slice(0, -1) + trailing,
        'an extra character': `${sig}A`,
        'an embedded space': `${sig.slice(0, 10)} ${sig.slice(10)}`,
        'an invalid character': `${sig.slice(0, 10)}!${sig.slice(10)}`,
      };
      for (const [what, variant] of Object.entries(variants)) {
        expect(Buffer.from(variant, 'base64').equals(Buffer.from(sig, 'base64url')), what).toBe(
          what !== 'an extra character',
        );
        const res = await call(`${head}.${payload}.${variant}`);
        expect(res.status, what).toBe(401);
        expect(res.body, what).toMatchObject({ code: 'PGRST301' });
      }
      const paddedPayload = await call(`${head}.${payload}=.${sig}`);
      expect(paddedPayload.status).toBe(401);
    });

    it('refuses alg none, other algorithms, and headers or payloads that are not JSON objects', async () => {
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`;
      for (const token of [
        none,
        forge({ alg: 'none', typ: 'JWT' }, claims(), server.jwtSecret),
        forge({ alg: 'HS512', typ: 'JWT' }, claims(), server.jwtSecret),
        forge({ typ: 'JWT' }, claims(), server.jwtSecret),
      ]) {
        const res = await call(token);
        expect(res.status).toBe(401);
        expect(res.body).toEqual({
          code: 'PGRST301',
          details: null,
          hint: null,
          message: 'Wrong or unsupported encoding algorithm',
        });
      }
      for (const header of ['not json', '["HS256"]', 'null']) {
        const res = await call(forge(header, claims(), server.jwtSecret));
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ code: 'PGRST301' });
      }
      for (const payload of ['not json', '[1]', '"role"', 'null']) {
        const res = await call(forge({ alg: 'HS256', typ: 'JWT' }, payload, server.jwtSecret));
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ code: 'PGRST303', message: 'Parsing claims failed' });
      }
      const empty = await rawRequest(server, {
        method: 'POST',
        path: '/rest/v1/rpc/hh_echo',
        headers: { authorization: 'Bearer ', 'content-type': 'application/json' },
        body: '{"a":1}',
      });
      expect(empty.status).toBe(401);
      expect(JSON.parse(empty.body)).toMatchObject({
        code: 'PGRST301',
        message: 'Empty JWT is sent in Authorization header',
      });
      const gotrue = await fetch(`${server.url}/auth/v1/user`, {
        headers: { apikey: server.anonKey, authorization: `Bearer ${none}` },
      });
      expect(gotrue.status).toBe(403);
      expect(await gotrue.json()).toMatchObject({ error_code: 'bad_jwt' });
    });

    it("honours exp, nbf and iat with PostgREST's 30 seconds of clock skew", async () => {
      const accepted = [
        { exp: now() - 10 },
        { nbf: now() + 10 },
        { iat: now() + 10 },
        { nbf: now() - 10, iat: now() - 10 },
      ];
      for (const extra of accepted) {
        const res = await call(signJwt({ ...claims(), ...extra }, server.jwtSecret));
        expect(res.status, JSON.stringify(extra)).toBe(200);
        expect(res.body).toBe('authenticated');
      }
      const refused: [Record<string, unknown>, string][] = [
        [{ exp: now() - 60 }, 'JWT expired'],
        [{ nbf: now() + 120 }, 'JWT not yet valid'],
        [{ iat: now() + 120 }, 'JWT issued at future'],
        [{ exp: String(now() + 600) }, "The JWT 'exp' claim must be a number"],
        [{ nbf: null }, "The JWT 'nbf' claim must be a number"],
      ];
      for (const [extra, message] of refused) {
        const res = await call(signJwt({ ...claims(), ...extra }, server.jwtSecret));
        expect(res.status, message).toBe(401);
        expect(res.body).toEqual({ code: 'PGRST303', details: null, hint: null, message });
      }
    });
  });
});

/** Engines the recovery test breaks on purpose, each in a server of its own. */
const breakable: Engine[] = [
  ...engines,
  {
    name: 'PGlite in a directory',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'userdb-hardening-'));
      return { database: dir, close: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
];

describe.each(breakable)('recovery from a fatal engine error on $name', (engine) => {
  let server: DevServer;
  let handle: Awaited<ReturnType<Engine['open']>>;
  /** The dev server's process warnings, kept (and asserted) instead of printed. */
  const warnings: string[] = [];

  beforeAll(async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation((warning: string | Error) => {
      warnings.push(String(warning));
    });
    handle = await engine.open();
    // No depth limit: the deep body reaches SQL, where PGlite's backend breaks
    // (`XX000 bad buffer ID`) and PostgreSQL answers 54001.
    server = await startDevServer({
      port: 0,
      database: handle.database,
      maxJsonDepth: Number.MAX_SAFE_INTEGER,
    });
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    vi.restoreAllMocks();
    await server?.stop();
    await handle?.close();
  });

  it("an internal error a function raises on purpose is the statement's: the engine is not reopened", async () => {
    await server.db.exec(`
      create or replace function public.raises_internal() returns void language plpgsql as $$
      begin raise exception 'on purpose' using errcode = 'XX000'; end $$;
      grant execute on function public.raises_internal() to anon;`);
    const before = warnings.length;
    const res = await post(server, '/rest/v1/rpc/raises_internal', '{}');
    expect((res.body as { code: string; message: string }).code).toBe('XX000');
    expect((res.body as { message: string }).message).toBe('on purpose');
    expect(warnings.slice(before)).toEqual([]);
    const a = await signedUp(server);
    expect((await a.sb.rpc('userdb_init')).error).toBeNull();
    expect(warnings.slice(before)).toEqual([]);
  });

  it(
    'keeps every committed change, serves and delivers changes again at once, and restarts',
    async () => {
      const a = await signedUp(server);
      expect((await a.sb.rpc('userdb_init')).error).toBeNull();
      const table = (v: string) => ({ schema: { fields: [], primaryKey: [] }, rows: [], v });
      expect(
        (await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table('committed') })).error,
      ).toBeNull();
      const seen: unknown[] = [];
      await subscribed(
        a.sb
          .channel('recovery')
          .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'user_databases' }, (p) =>
            seen.push(p.new),
          ),
      );

      if (server.db.kind === 'pglite') {
        // A body nested 10,000 levels deep overflows PGlite's stack in SQL: `XX000 bad buffer
        // ID: 0`, after which its backend answered 25P02 to everything.
        const res = await post(server, '/rest/v1/rpc/userdb_set', `{"path":[],"value":${deep(10_000)}}`);
        expect(res.status).toBe(500);
        expect((res.body as { code: string }).code).toBe('XX000');
      } else {
        // PostgreSQL survives that body; its fatal errors end connections instead: terminate
        // every backend of the server (pool and LISTEN connection alike).
        const admin = new pg.Client({ connectionString: handle.database });
        await admin.connect();
        const killed = await admin.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        );
        await admin.end();
        expect(killed.rowCount).toBeGreaterThan(0);
      }

      const b = await signedUp(server);
      expect((await b.sb.rpc('userdb_init')).error).toBeNull();
      expect((await a.sb.rpc('userdb_get', { path: ['tables', 't', 'v'] })).data).toBe('committed');
      // The change feed works again: a write is delivered (after a short reconnect on PostgreSQL).
      for (let i = 0; seen.length === 0; i++) {
        expect(i).toBeLessThan(100);
        expect(
          (await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table(`after ${i}`) })).error,
        ).toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await a.sb.removeAllChannels();
      await server.restart();
      expect((await a.sb.rpc('userdb_get', { path: ['tables', 't', 'v'] })).data).toMatch(/^after \d+$/);
      expect((await b.sb.rpc('userdb_get', { path: ['version'] })).data).toBe(1);
      if (handle.database.startsWith('postgres')) expect(warnings).toEqual([]);
      else expect(warnings.some((w) => w.includes('reopened from its committed data'))).toBe(true);
    },
    BOOT_TIMEOUT_MS,
  );
});

describe('jsonTooDeep', () => {
  it('counts arrays and objects, not brackets inside strings or after escaped quotes', () => {
    expect(jsonTooDeep('[[1]]', 2)).toBe(false);
    expect(jsonTooDeep('[[1]]', 1)).toBe(true);
    expect(jsonTooDeep('{"a":{"b":[]}}', 2)).toBe(true);
    expect(jsonTooDeep('{"a":"[[[[{{{{"}', 1)).toBe(false);
    expect(jsonTooDeep('{"a":"\\\\"}', 1)).toBe(false);
    expect(jsonTooDeep('{"a":"\\"[[[[","b":1}', 1)).toBe(false);
    expect(jsonTooDeep('["\\\\",[[]]]', 2)).toBe(true);
    expect(jsonTooDeep(deep(10_000), 512)).toBe(true);
  });
});

describe('verifyJwt', () => {
  const secret = 'a-secret-of-at-least-thirty-two-characters';
  it('sorts refusals into the reasons Realtime words and the codes PostgREST answers', () => {
    const t = now();
    expect(verifyJwt(signJwt({ role: 'anon', exp: t + 60 }, secret), secret, t)).toMatchObject({ ok: true });
    expect(verifyJwt(signJwt({ role: 'anon' }, 'other-secret'), secret, t)).toMatchObject({
      ok: false,
      reason: 'signature',
      code: 'PGRST301',
    });
    expect(verifyJwt(signJwt({ role: 'anon', exp: t - 5 }, secret), secret, t)).toEqual({
      ok: false,
      reason: 'expired',
      code: 'PGRST303',
      message: 'JWT expired',
      expiredSeconds: 5,
    });
    expect(
      verifyJwt(signJwt({ role: 'anon', exp: t - 5 }, secret), secret, t, { leewaySeconds: 30 }),
    ).toMatchObject({ ok: true });
    expect(verifyJwt(forge({ alg: 'none' }, { role: 'anon' }, secret), secret, t)).toMatchObject({
      ok: false,
      reason: 'malformed',
      code: 'PGRST301',
    });
    expect(verifyJwt(signJwt({ role: 'anon', nbf: t + 5 }, secret), secret, t)).toMatchObject({
      ok: false,
      reason: 'malformed',
      code: 'PGRST303',
      message: 'JWT not yet valid',
    });
    expect(verifyJwt('a.b', secret, t)).toMatchObject({
      reason: 'malformed',
      message: 'Expected 3 parts in JWT; got 2',
    });
  });
});
