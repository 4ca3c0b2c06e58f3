import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthRetryableFetchError } from '@supabase/supabase-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BroadcastFate } from '../../src/devserver/index.js';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, RawSocket, signedUp, waitFor } from './helpers.js';

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
}, BOOT_TIMEOUT_MS);

afterEach(() => server.faults.reset());

afterAll(async () => {
  await server?.stop();
});

const table = (v: unknown) => ({ schema: { fields: [], primaryKey: [] }, rows: [], v });

async function docValue(userId: string): Promise<unknown> {
  const rows = await server.db.query<{ v: string | null }>(
    "select (db #> '{tables,t,v}')::text as v from public.user_databases where user_id = $1",
    [userId],
  );
  return rows[0]?.v === null || rows[0] === undefined ? null : JSON.parse(rows[0].v);
}

describe('dropResponseAfterCommit', () => {
  it('commits the rpc but the client gets a network error instead of the answer', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    server.faults.dropResponseAfterCommit(1);
    const lost = await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table('committed') });
    expect(lost.status).toBe(0);
    expect(lost.data).toBeNull();
    expect(lost.error?.message).toMatch(/fetch failed|other side closed|socket/i);
    expect(await docValue(a.id)).toBe('committed');
    expect(server.faults.droppedResponses).toBe(1);

    const next = await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table('answered') });
    expect(next.error).toBeNull();
  });

  it('drops the responses a predicate picks, until removed', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    const stop = server.faults.dropResponseAfterCommit(
      (call) => call.fn === 'userdb_set' && call.sub === a.id,
    );
    expect((await a.sb.rpc('userdb_get', { path: [] })).error).toBeNull();
    expect((await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table(1) })).status).toBe(0);
    expect((await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table(2) })).status).toBe(0);
    expect(await docValue(a.id)).toBe(2);
    stop();
    expect((await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table(3) })).status).toBe(200);
  });

  it('does not drop responses of failed calls (nothing was committed)', async () => {
    const a = await signedUp(server);
    const before = server.faults.droppedResponses;
    server.faults.dropResponseAfterCommit(1);
    const failed = await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table(1) });
    expect(failed.status).toBe(404); // PT404: no document yet, nothing committed
    expect(server.faults.droppedResponses).toBe(before);
    const committed = await a.sb.rpc('userdb_init'); // the pending drop applies to the next commit
    expect(committed.status).toBe(0);
    expect(server.faults.droppedResponses).toBe(before + 1);
  });
});

describe('latency and offline', () => {
  it('delays every request by the given latency', async () => {
    server.faults.latency(60);
    const start = performance.now();
    await client(server).rpc('no_such_fn');
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);
  });

  it('refuses HTTP and websockets while offline, and serves again after', async () => {
    const a = await signedUp(server);
    server.faults.offline(true);
    const rpc = await a.sb.rpc('userdb_init');
    expect(rpc.status).toBe(0);
    const auth = await client(server).auth.signInAnonymously();
    expect(auth.error).toBeInstanceOf(AuthRetryableFetchError);
    await expect(new RawSocket(server).opened()).rejects.toThrow();

    server.faults.offline(false);
    expect((await a.sb.rpc('userdb_init')).error).toBeNull();
    const raw = new RawSocket(server);
    await raw.opened();
    raw.close();
  });

  it('going offline cuts the open sockets', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    const closed = new Promise((resolve) => raw.ws.once('close', resolve));
    server.faults.offline(true);
    await closed;
    expect(raw.closed).toBe(true);
  });
});

describe('broadcasts', () => {
  /** A public channel of `topic` on its own socket, collecting the `n` of each `change` broadcast. */
  async function listener(topic: string): Promise<number[]> {
    const got: number[] = [];
    const channel = client(server)
      .channel(topic)
      .on('broadcast', { event: 'change' }, (m) => got.push((m.payload as { n: number }).n));
    await new Promise<void>((resolve, reject) =>
      channel.subscribe((status, error) => {
        if (status === 'SUBSCRIBED') resolve();
        else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(error ?? new Error(status));
      }),
    );
    return got;
  }
  const send = (topic: string, n: number) =>
    server.db.query(`select realtime.send($1::jsonb, 'change', $2, false)`, [JSON.stringify({ n }), topic]);

  it('drops, duplicates and reorders the frames to the sockets a decider picks; the others get all, in order', async () => {
    const topic = `room:faults-${Math.random()}`;
    const faulty = await listener(topic);
    const fine = await listener(topic);
    const fates: BroadcastFate[] = ['deliver', 'drop', 'duplicate', 'hold', 'deliver', 'deliver'];
    let faultySocket: number | undefined;
    const seen: string[] = [];
    server.faults.broadcasts((d) => {
      seen.push(`${d.topic}/${d.event}/${d.private}`);
      // the first socket asked is the faulty one's (sockets are asked in the order they opened)
      faultySocket ??= d.socket;
      return d.socket === faultySocket ? (fates.shift() ?? 'deliver') : 'deliver';
    });
    for (let n = 1; n <= 6; n++) await send(topic, n);
    await waitFor(() => fine.length === 6 && faulty.length === 6, 10_000, 'six frames each');
    expect(fine).toEqual([1, 2, 3, 4, 5, 6]);
    expect(faulty).toEqual([1, 3, 3, 5, 4, 6]);
    expect(new Set(seen)).toEqual(new Set([`${topic}/change/false`]));
    expect(server.faults.broadcastFaults).toMatchObject({ drop: 1, duplicate: 1, hold: 1 });
  });

  it('sends the held frames when the faults are reset, and delivers normally after', async () => {
    const topic = `room:faults-${Math.random()}`;
    const got = await listener(topic);
    const heldBefore = server.faults.broadcastFaults.hold;
    server.faults.broadcasts(() => 'hold');
    await send(topic, 1);
    await send(topic, 2);
    await waitFor(() => server.faults.broadcastFaults.hold === heldBefore + 2, 10_000, 'two frames held');
    expect(got).toEqual([]);
    server.faults.reset();
    await waitFor(() => got.length === 2, 10_000, 'held frames released');
    await send(topic, 3);
    await waitFor(() => got.length === 3, 10_000, 'a frame after reset');
    expect(got).toEqual([1, 2, 3]);
  });
});

describe('restart', () => {
  it('restarts an in-memory server on the same port and data; sessions stay valid', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    await a.sb.rpc('userdb_set', { path: ['tables', 't'], value: table('before') });
    const url = server.url;
    const raw = new RawSocket(server);
    await raw.opened();
    const closed = new Promise((resolve) => raw.ws.once('close', resolve));
    await server.restart();
    await closed;
    expect(server.url).toBe(url);
    const got = await a.sb.rpc('userdb_get', { path: ['tables', 't', 'v'] });
    expect(got.data).toBe('before');
    expect((await a.sb.auth.refreshSession()).error).toBeNull();
  });

  it(
    'persists a PGlite directory across restart and a new server, applying migrations once',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'userdb-dev-'));
      try {
        const first = await startDevServer({ port: 0, database: dir });
        const sb = client(first);
        const { data } = await sb.auth.signUp({ email: 'persist@example.com', password: 'password-123' });
        await sb.rpc('userdb_init');
        await sb.rpc('userdb_set', { path: ['tables', 't'], value: table('kept') });
        await first.restart();
        expect((await sb.rpc('userdb_get', { path: ['tables', 't', 'v'] })).data).toBe('kept');
        await first.stop();

        const second = await startDevServer({ port: 0, database: dir, jwtSecret: first.jwtSecret });
        try {
          const again = client(second);
          const signIn = await again.auth.signInWithPassword({
            email: 'persist@example.com',
            password: 'password-123',
          });
          expect(signIn.data.user?.id).toBe(data.user!.id);
          expect((await again.rpc('userdb_get', { path: ['tables', 't', 'v'] })).data).toBe('kept');
          const migrations = await second.db.query(
            'select version from supabase_migrations.schema_migrations',
          );
          expect(migrations.length).toBeGreaterThan(0);
          expect(new Set(migrations.map((m) => m.version)).size).toBe(migrations.length);
        } finally {
          await second.stop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    BOOT_TIMEOUT_MS,
  );
});

describe('start-up failures', () => {
  it(
    'rejects when the port is taken, and releases what it opened',
    async () => {
      const port = Number(new URL(server.url).port);
      await expect(startDevServer({ port })).rejects.toThrow(/EADDRINUSE/);
      expect((await client(server).rpc('no_such_fn')).status).toBe(404);
    },
    BOOT_TIMEOUT_MS,
  );
});
