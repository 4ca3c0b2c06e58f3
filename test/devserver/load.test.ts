import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, signedUp, subscribed, waitFor } from './helpers.js';

const USERS = 20;
const SOCKETS = 100;
const CALLS = 1000;

const databaseUrl = process.env.DATABASE_URL;
if (process.env.CI !== undefined && process.env.CI !== '' && databaseUrl === undefined) {
  throw new Error('DATABASE_URL must be set in CI: Realtime delivery is load-tested on PostgreSQL too');
}

/** PGlite in memory, and the PostgreSQL database of DATABASE_URL (setup below is idempotent). */
const engines: [string, string][] = [['PGlite', 'memory']];
if (databaseUrl !== undefined) engines.push(['PostgreSQL', databaseUrl]);

describe.each(engines)('%s', (_engine, database) => {
  let server: DevServer;
  let users: { sb: SupabaseClient; id: string; token: string }[] = [];
  const listeners: SupabaseClient[] = [];

  beforeAll(async () => {
    server = await startDevServer({ port: 0, database });
    // Each write commits a change of the user's row and a broadcast on the user's private
    // topic `load:<id>` (readable and writable by that user only), in one transaction.
    await server.db.exec(`
    drop policy if exists "load: read own topic" on realtime.messages;
    drop policy if exists "load: write own topic" on realtime.messages;
    create policy "load: read own topic" on realtime.messages for select to authenticated
      using (extension = 'broadcast' and realtime.topic() = 'load:' || (select auth.uid())::text);
    create policy "load: write own topic" on realtime.messages for insert to authenticated
      with check (extension = 'broadcast' and realtime.topic() = 'load:' || (select auth.uid())::text);
    create or replace function public.load_write(n int) returns void language plpgsql as $$
    begin
      perform public.userdb_set(array['tables', 'load'],
        jsonb_build_object('schema', jsonb_build_object('fields', '[]'::jsonb, 'primaryKey', '[]'::jsonb),
                           'rows', '[]'::jsonb, 'n', n));
      perform realtime.send(jsonb_build_object('n', n), 'change', 'load:' || (select auth.uid())::text, true);
    end $$;
  `);
    users = [];
    for (let i = 0; i < USERS; i++) users.push(await signedUp(server));
    await Promise.all(users.map((u) => u.sb.rpc('userdb_init')));
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(listeners.map((l) => l.removeAllChannels()));
    await server?.db.query('delete from auth.users where id = any($1::uuid[])', [users.map((u) => u.id)]);
    await server?.stop();
  });

  /** Runs `perUser` calls for every user concurrently (one in flight per client); returns the failures. */
  async function round(perUser: number, offset: number): Promise<number> {
    let failures = 0;
    await Promise.all(
      users.map(async (u) => {
        for (let i = 0; i < perUser; i++) {
          const { error } = await u.sb.rpc('load_write', { n: offset + i + 1 });
          if (error !== null) failures++;
        }
      }),
    );
    return failures;
  }

  type Feed = 'filtered' | 'rls-only' | 'broadcast';

  it(
    'answers 1,000 writes from 20 clients while 100 sockets listen: nothing lost, duplicated, reordered or leaked; memory steady',
    async () => {
      // 100 sockets: five devices per user, each on its own websocket: two listen to the
      // user's row with a filter, one to every row of the table (row level security alone
      // decides), two to the user's private broadcast topic.
      const feeds: Feed[] = ['filtered', 'filtered', 'rls-only', 'broadcast', 'broadcast'];
      const received: { owner: string; seen: number[]; leaked: number }[] = [];
      const subscriptions: Promise<void>[] = [];
      for (let s = 0; s < SOCKETS; s++) {
        const owner = users[s % USERS]!;
        const feed = feeds[Math.floor(s / USERS) % feeds.length]!;
        const device = client(server);
        listeners.push(device);
        await device.realtime.setAuth(owner.token);
        const entry = { owner: owner.id, seen: [] as number[], leaked: 0 };
        received.push(entry);
        if (feed === 'broadcast') {
          const channel = device
            .channel(`load:${owner.id}`, { config: { private: true } })
            .on('broadcast', { event: 'change' }, (message) => entry.seen.push(message.payload.n as number));
          subscriptions.push(
            new Promise((resolve, reject) =>
              channel.subscribe((status, error) => {
                if (status === 'SUBSCRIBED') resolve();
                else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')
                  reject(error ?? new Error(status));
              }),
            ),
          );
          continue;
        }
        const channel = device.channel(`load-${s}`).on(
          'postgres_changes',
          {
            event: 'UPDATE',
            schema: 'public',
            table: 'user_databases',
            ...(feed === 'filtered' ? { filter: `user_id=eq.${owner.id}` } : {}),
          },
          (payload) => {
            const row = payload.new as { user_id: string; db: { tables: { load: { n: number } } } };
            if (row.user_id !== owner.id) entry.leaked++;
            else entry.seen.push(row.db.tables.load.n);
          },
        );
        subscriptions.push(subscribed(channel));
      }
      await Promise.all(subscriptions);

      const perRound = CALLS / 2 / USERS;
      expect(await round(perRound, 0)).toBe(0);
      await waitFor(() => received.every((r) => r.seen.length >= perRound), 30_000, 'first round of events');
      const afterFirst = process.memoryUsage();

      expect(await round(perRound, perRound)).toBe(0);
      await waitFor(
        () => received.every((r) => r.seen.length >= 2 * perRound),
        30_000,
        'second round of events',
      );
      // Anything duplicated or leaked late would arrive before this user's marker broadcast.
      await server.db.query(
        `select realtime.send('{"n": 0}'::jsonb, 'change', 'load:' || id::text, true) from auth.users where id = any($1::uuid[])`,
        [users.map((u) => u.id)],
      );
      await waitFor(
        () => received.filter((_, s) => Math.floor(s / USERS) >= 3).every((r) => r.seen.at(-1) === 0),
        30_000,
        'markers',
      );
      const afterSecond = process.memoryUsage();

      // Nothing lost, nothing duplicated, in commit order, nothing of another user: every
      // socket saw 1..50 of its own user.
      const expected = Array.from({ length: 2 * perRound }, (_, i) => i + 1);
      for (const r of received) {
        expect(r.leaked).toBe(0);
        expect(r.seen.filter((n) => n !== 0)).toEqual(expected);
      }
      for (const u of users) {
        const { data } = await u.sb.rpc('userdb_get', { path: ['tables', 'load', 'n'] });
        expect(data).toBe(2 * perRound);
      }
      // Memory steady: a second identical round must not grow the heap by more than a loose bound
      // (no per-request or per-event state is retained).
      expect(afterSecond.heapUsed - afterFirst.heapUsed).toBeLessThan(64 * 1024 * 1024);
      expect(server.faults.droppedResponses).toBe(0);
    },
    BOOT_TIMEOUT_MS,
  );
});
