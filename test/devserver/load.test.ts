import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, signedUp, subscribed, waitFor } from './helpers.js';

const USERS = 20;
const SOCKETS = 100;
const CALLS = 1000;

let server: DevServer;
let users: { sb: SupabaseClient; id: string }[] = [];
const listeners: SupabaseClient[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  users = [];
  for (let i = 0; i < USERS; i++) users.push(await signedUp(server));
  await Promise.all(users.map((u) => u.sb.rpc('userdb_init')));
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(listeners.map((l) => l.removeAllChannels()));
  await server?.stop();
});

/** Runs `perUser` calls for every user concurrently (one in flight per client); returns the failures. */
async function round(perUser: number, offset: number): Promise<number> {
  let failures = 0;
  await Promise.all(
    users.map(async (u) => {
      for (let i = 0; i < perUser; i++) {
        const { error } = await u.sb.rpc('userdb_set', {
          path: ['tables', 'load'],
          value: { schema: { fields: [], primaryKey: [] }, rows: [], n: offset + i + 1 },
        });
        if (error !== null) failures++;
      }
    }),
  );
  return failures;
}

it(
  'answers 1,000 rpc calls from 20 clients while 100 sockets listen, losing nothing, memory steady',
  async () => {
    // 100 sockets: five devices per user, each on its own websocket, listening to its user's row.
    const received: number[][] = [];
    const subscriptions: Promise<void>[] = [];
    for (let s = 0; s < SOCKETS; s++) {
      const owner = users[s % USERS]!;
      const device = client(server);
      listeners.push(device);
      const { data } = await owner.sb.auth.getSession();
      await device.auth.setSession({
        access_token: data.session!.access_token,
        refresh_token: data.session!.refresh_token,
      });
      const seen: number[] = [];
      received.push(seen);
      const channel = device
        .channel(`load-${s}`)
        .on(
          'postgres_changes',
          { event: 'UPDATE', schema: 'public', table: 'user_databases', filter: `user_id=eq.${owner.id}` },
          (payload) =>
            seen.push((payload.new as { db: { tables: { load: { n: number } } } }).db.tables.load.n),
        );
      subscriptions.push(subscribed(channel));
    }
    await Promise.all(subscriptions);

    const perRound = CALLS / 2 / USERS;
    expect(await round(perRound, 0)).toBe(0);
    await waitFor(() => received.every((r) => r.length === perRound), 30_000, 'first round of events');
    const afterFirst = process.memoryUsage();

    expect(await round(perRound, perRound)).toBe(0);
    await waitFor(() => received.every((r) => r.length === 2 * perRound), 30_000, 'second round of events');
    const afterSecond = process.memoryUsage();

    // Nothing lost, nothing duplicated, in commit order: every socket saw 1..50 for its user.
    const expected = Array.from({ length: 2 * perRound }, (_, i) => i + 1);
    for (const r of received) expect(r).toEqual(expected);
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
