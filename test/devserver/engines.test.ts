import type { RealtimePostgresChangesPayload } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, signedUp, subscribed, waitFor } from './helpers.js';

/**
 * One contract suite over both engines: PGlite in memory always, and a real PostgreSQL
 * server when DATABASE_URL is set (required in CI). The PostgreSQL run gets a database
 * of its own, dropped afterwards.
 */
interface Engine {
  name: string;
  open(): Promise<{
    database: string;
    writer: (sql: string, params: unknown[]) => Promise<void>;
    close(): Promise<void>;
  }>;
}

const databaseUrl = process.env.DATABASE_URL;
if (process.env.CI !== undefined && process.env.CI !== '' && databaseUrl === undefined) {
  throw new Error('DATABASE_URL must be set in CI: the dev server is tested on PostgreSQL too');
}

const engines: Engine[] = [
  {
    name: 'PGlite in memory',
    async open() {
      return { database: 'memory', writer: async () => undefined, close: async () => undefined };
    },
  },
];
if (databaseUrl !== undefined) {
  engines.push({
    name: 'PostgreSQL (DATABASE_URL)',
    async open() {
      const name = `userdb_devserver_${process.pid}_${Date.now()}`;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      const url = new URL(databaseUrl);
      url.pathname = `/${name}`;
      const writer = new pg.Client({ connectionString: url.toString() });
      await writer.connect();
      return {
        database: url.toString(),
        writer: async (sql, params) => {
          await writer.query(sql, params);
        },
        async close() {
          await writer.end();
          await admin.query(`drop database if exists ${name} with (force)`);
          await admin.end();
        },
      };
    },
  });
}

describe.each(engines)('dev server on $name', (engine) => {
  let server: DevServer;
  let handle: Awaited<ReturnType<Engine['open']>>;

  beforeAll(async () => {
    handle = await engine.open();
    server = await startDevServer({ port: 0, database: handle.database });
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
    await handle?.close();
  });

  it('signs up, calls the userdb rpcs, and formats timestamps as PostgREST', async () => {
    const a = await signedUp(server);
    const init = await a.sb.rpc('userdb_init');
    expect(init.error).toBeNull();
    const token = (init.data as { updated_at: string }).updated_at;
    expect(token).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$/);
    const set = await a.sb.rpc('userdb_set', {
      path: ['tables', 't'],
      value: { schema: { fields: [], primaryKey: [] }, rows: [] },
      expected_updated_at: token,
    });
    expect(set.error).toBeNull();
    const conflict = await a.sb.rpc('userdb_set', {
      path: ['tables', 't'],
      value: { schema: { fields: [], primaryKey: [] }, rows: [] },
      expected_updated_at: token,
    });
    expect(conflict.status).toBe(409);
    expect(conflict.error).toMatchObject({ code: 'PT409', details: set.data });
  });

  it('delivers a change made on another connection to the owner only', async () => {
    const a = await signedUp(server);
    const b = await signedUp(server);
    await a.sb.rpc('userdb_init');
    await b.sb.rpc('userdb_init');
    const seenByA: RealtimePostgresChangesPayload<Record<string, unknown>>[] = [];
    const seenByB: RealtimePostgresChangesPayload<Record<string, unknown>>[] = [];
    await subscribed(
      a.sb
        .channel('a')
        .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'user_databases' }, (p) =>
          seenByA.push(p),
        ),
    );
    await subscribed(
      b.sb
        .channel('b')
        .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'user_databases' }, (p) =>
          seenByB.push(p),
        ),
    );
    const sql = `update public.user_databases set db = jsonb_set(db, '{tables,x}', '{"schema":{"fields":[],"primaryKey":[]},"rows":[]}') where user_id = $1`;
    if (server.db.kind === 'postgres') await handle.writer(sql, [a.id]);
    else await server.db.query(sql, [a.id]);
    await waitFor(() => seenByA.length === 1, 10_000, "A's event");
    expect((seenByA[0]!.new as { user_id: string }).user_id).toBe(a.id);
    await b.sb.rpc('userdb_set', {
      path: ['tables', 'y'],
      value: { schema: { fields: [], primaryKey: [] }, rows: [] },
    });
    await waitFor(() => seenByB.length === 1, 10_000, "B's own event");
    expect((seenByB[0]!.new as { user_id: string }).user_id).toBe(b.id);
  });

  it('keeps users and documents across a restart', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    await server.restart();
    const got = await a.sb.rpc('userdb_get', { path: ['version'] });
    expect(got.error).toBeNull();
    expect(got.data).toBe(1);
    const again = client(server);
    const { data } = await a.sb.auth.getUser();
    expect(data.user).not.toBeNull();
    expect(
      (
        await again.auth.refreshSession({
          refresh_token: (await a.sb.auth.getSession()).data.session!.refresh_token,
        })
      ).error,
    ).toBeNull();
  });

  it('reloads the function cache on NOTIFY pgrst', async () => {
    const a = await signedUp(server);
    await server.db.exec(
      'create or replace function public.fx_version(v int) returns int language sql as $$ select v $$',
    );
    expect((await a.sb.rpc('fx_version', { v: 2 })).data).toBe(2);
    // Same argument name, another type: only a reload of the cache finds the new signature.
    await server.db.exec(
      "drop function public.fx_version(int); create function public.fx_version(v text) returns text language sql as $$ select 'text:' || v $$; notify pgrst, 'reload schema'",
    );
    let result = await a.sb.rpc('fx_version', { v: 'a' });
    for (let i = 0; i < 100 && result.error !== null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10)); // PostgreSQL delivers NOTIFY asynchronously
      result = await a.sb.rpc('fx_version', { v: 'a' });
    }
    expect(result.data).toBe('text:a');
  });
});

if (databaseUrl !== undefined) {
  describe('two dev servers on one PostgreSQL database', () => {
    const postgres = engines[1]!;
    let handle: Awaited<ReturnType<Engine['open']>>;
    let first: DevServer;
    let second: DevServer;

    beforeAll(async () => {
      handle = await postgres.open();
      // Started at once: preparing one database is serialized, not raced.
      [first, second] = await Promise.all([
        startDevServer({ port: 0, database: handle.database }),
        startDevServer({ port: 0, database: handle.database }),
      ]);
    }, BOOT_TIMEOUT_MS);

    afterAll(async () => {
      await first?.stop();
      await second?.stop();
      await handle?.close();
    });

    it('both deliver every change to their own subscribers', async () => {
      const a = await signedUp(first);
      await a.sb.rpc('userdb_init');
      const { data } = await a.sb.auth.getSession();
      const elsewhere = client(second);
      await elsewhere.auth.setSession({
        access_token: data.session!.access_token,
        refresh_token: data.session!.refresh_token,
      });
      const seen: number[] = [];
      const seenElsewhere: number[] = [];
      const binding = { event: 'UPDATE', schema: 'public', table: 'user_databases' } as const;
      await subscribed(a.sb.channel('one').on('postgres_changes', binding, () => seen.push(1)));
      await subscribed(elsewhere.channel('two').on('postgres_changes', binding, () => seenElsewhere.push(1)));
      for (let i = 0; i < 5; i++) {
        const sb = i % 2 === 0 ? a.sb : elsewhere;
        const { error } = await sb.rpc('userdb_set', {
          path: ['tables', 't'],
          value: { schema: { fields: [], primaryKey: [] }, rows: [], i },
        });
        expect(error).toBeNull();
      }
      await waitFor(
        () => seen.length === 5 && seenElsewhere.length === 5,
        10_000,
        'five events on both servers',
      );
    });
  });
}
