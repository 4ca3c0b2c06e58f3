/**
 * Workload 10: Realtime delivery under load. The dev server runs in a process of its own, on
 * PGlite and — when DATABASE_URL is set — on that PostgreSQL database (the users it creates are
 * deleted afterwards). 100
 * users (anonymous sign-ins), each with one more supabase-js client on its own websocket (100
 * sockets) subscribed to `postgres_changes` UPDATEs of its own row of `public.user_databases`
 * (filter `user_id=eq.<id>`, RLS checked too) and, on the same socket, to the user's private
 * Broadcast topic `userdb:<id>` when the database sends the delta-sync broadcasts (the join is
 * refused otherwise, and that feed is reported as not measured). Then 1,000 writes (`userdb_set`, 10 per user)
 * at concurrency 50, as fast as the server accepts them.
 *
 * Delivery latency = event received − the write's RPC response received (both in this process;
 * an event that arrives before the response counts as 0). Reported with p50/p99 (target p99 ≤
 * 100 ms), the accepted write rate and the delivered event rate, and what went wrong: events
 * lost (not received within 30 s of the last write), duplicated, out of order, or leaked (another
 * user's row). The floor is the RPC round trip of the same writes.
 */
import type { WebSocketLikeConstructor } from '@supabase/realtime-js';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { type Figure, notMeasured, timing } from '../lib/report.js';
import { type ServerAddress, startServerProcess } from '../lib/server-process.js';
import { summarize } from '../lib/stats.js';

/** Options of {@link realtimeLoadWorkload}. */
export interface RealtimeLoadOptions {
  quick: boolean;
  log: (line: string) => void;
  databaseUrl: string | undefined;
}

/** Sizes of one run. */
export interface LoadSize {
  users: number;
  writes: number;
  concurrency: number;
}

/** What one run measured. */
export interface FeedResult {
  latencies: number[];
  deliveredPerSecond: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  leaked: number;
}

/** What one run measured. */
export interface LoadResult {
  /** The postgres_changes feed (every listener). */
  changes: FeedResult;
  /**
   * The Broadcast feed of the delta-sync contract (private topic `userdb:<id>`, event
   * `change`), when the database sends it; undefined when the join is refused (no migration).
   */
  broadcast: FeedResult | undefined;
  rpc: number[];
  writesPerSecond: number;
  failedWrites: number;
}

type Arrival = { n: number; at: number };

/** n of a `userdb_set` of `/tables/load` from a broadcast change's ops (replace/add of the table). */
function nOfOps(ops: unknown): number | undefined {
  if (!Array.isArray(ops)) return undefined;
  for (const op of ops as { path?: string; value?: { n?: unknown } }[]) {
    if (op.path === '/tables/load' && typeof op.value?.n === 'number') return op.value.n;
  }
  return undefined;
}

function feedResult(
  received: Arrival[][],
  acked: number[][],
  expected: number[],
  leaked: number,
  started: number,
  writeEnd: number,
): FeedResult {
  const lastEvent = Math.max(...received.flat().map((e) => e.at), writeEnd);
  const latencies: number[] = [];
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let delivered = 0;
  received.forEach((events, u) => {
    const seen = new Set<number>();
    let last = 0;
    for (const e of events) {
      if (seen.has(e.n)) duplicated++;
      else {
        seen.add(e.n);
        const ack = acked[u]?.[e.n - 1];
        if (ack !== undefined) latencies.push(Math.max(0, e.at - ack));
      }
      if (e.n < last) outOfOrder++;
      last = e.n;
      delivered++;
    }
    for (let k = 1; k <= (expected[u] ?? 0); k++) if (!seen.has(k)) lost++;
  });
  return {
    latencies,
    deliveredPerSecond: (delivered * 1000) / (lastEvent - started),
    lost,
    duplicated,
    outOfOrder,
    leaked,
  };
}

const wallNow = () => performance.timeOrigin + performance.now();

function supabase(server: ServerAddress): SupabaseClient {
  return createClient(server.url, server.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor },
  });
}

/**
 * Runs the load against a running dev server: signs `users` users in, subscribes one listening
 * client per user, writes, and waits for the events.
 */
export async function runLoad(
  server: ServerAddress,
  size: LoadSize,
  userIds: string[] = [],
): Promise<LoadResult> {
  const writers: { sb: SupabaseClient; id: string }[] = [];
  const listeners: SupabaseClient[] = [];
  try {
    for (let u = 0; u < size.users; u++) {
      const sb = supabase(server);
      const { data, error } = await sb.auth.signInAnonymously();
      if (error !== null || data.session === null || data.user === null)
        throw error ?? new Error('no session');
      const init = await sb.rpc('userdb_init');
      if (init.error !== null) throw new Error(init.error.message);
      writers.push({ sb, id: data.user.id });
      userIds.push(data.user.id);
    }
    // received[u]: the values of n seen by user u's listener, with their arrival times.
    const received: Arrival[][] = writers.map(() => []);
    const broadcasts: Arrival[][] = writers.map(() => []);
    let leaked = 0;
    let broadcastJoins = 0;
    await Promise.all(
      writers.map(async (w, u) => {
        const { data } = await w.sb.auth.getSession();
        const listener = supabase(server);
        listeners.push(listener);
        await listener.realtime.setAuth(data.session?.access_token ?? null);
        const channel = listener
          .channel(`load-${u}`)
          .on(
            'postgres_changes',
            { event: 'UPDATE', schema: 'public', table: 'user_databases', filter: `user_id=eq.${w.id}` },
            (payload) => {
              const row = payload.new as { user_id: string; db: { tables?: { load?: { n?: number } } } };
              if (row.user_id !== w.id) leaked++;
              const n = row.db.tables?.load?.n;
              if (typeof n === 'number') received[u]?.push({ n, at: wallNow() });
            },
          );
        await new Promise<void>((resolve, reject) => {
          let joined = false;
          let ready = false;
          channel.on('system', {}, (p: { extension?: string; status?: string }) => {
            if (p.extension === 'postgres_changes' && p.status === 'ok') {
              ready = true;
              if (joined) resolve();
            }
          });
          channel.subscribe((status, error) => {
            if (status === 'SUBSCRIBED') {
              joined = true;
              if (ready) resolve();
            } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')
              reject(error ?? new Error(status));
          });
        });
        // The same socket also joins the user's private Broadcast topic (delta-sync contract).
        const topic = listener
          .channel(`userdb:${w.id}`, { config: { private: true } })
          .on('broadcast', { event: 'change' }, (message) => {
            const n = nOfOps((message.payload as { ops?: unknown }).ops);
            if (typeof n === 'number') broadcasts[u]?.push({ n, at: wallNow() });
          });
        const joined = await new Promise<boolean>((resolve) => {
          topic.subscribe((status) => {
            if (status === 'SUBSCRIBED') resolve(true);
            else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') resolve(false);
          });
        });
        if (joined) broadcastJoins++;
        else await listener.removeChannel(topic);
      }),
    );
    const withBroadcast = broadcastJoins === writers.length;

    // The writes: user u's k-th write sets n = k + 1; `acked[u][k]` is when its response came.
    const perUser = Math.ceil(size.writes / size.users);
    const acked: number[][] = writers.map(() => []);
    const rpc: number[] = [];
    let failedWrites = 0;
    // Worker w writes for users w, w + concurrency, …, one write in flight at a time, so each
    // user's writes commit in order; the k-th write of user u sets n = k + 1.
    const total = Math.min(size.writes, perUser * size.users);
    let issued = 0;
    const started = wallNow();
    await Promise.all(
      Array.from({ length: size.concurrency }, async (_, w) => {
        const mine = writers.map((_, u) => u).filter((u) => u % size.concurrency === w);
        for (let k = 0; k < perUser; k++) {
          for (const u of mine) {
            if (issued >= total) return;
            issued++;
            const t0 = wallNow();
            const { error } = await (writers[u] as { sb: SupabaseClient }).sb.rpc('userdb_set', {
              path: ['tables', 'load'],
              value: { schema: { fields: [], primaryKey: [] }, rows: [], n: k + 1 },
            });
            const t1 = wallNow();
            rpc.push(t1 - t0);
            if (error !== null) failedWrites++;
            (acked[u] as number[])[k] = t1;
          }
        }
      }),
    );
    const writeEnd = wallNow();
    const expected = acked.map((a) => a.length);
    const deadline = writeEnd + 30_000;
    const pending = () =>
      received.some((r, u) => r.length < (expected[u] ?? 0)) ||
      (withBroadcast && broadcasts.some((r, u) => r.length < (expected[u] ?? 0)));
    while (wallNow() < deadline && pending()) await new Promise((resolve) => setTimeout(resolve, 5));
    return {
      changes: feedResult(received, acked, expected, leaked, started, writeEnd),
      broadcast: withBroadcast ? feedResult(broadcasts, acked, expected, 0, started, writeEnd) : undefined,
      rpc,
      writesPerSecond: (issued * 1000) / (writeEnd - started),
      failedWrites,
    };
  } finally {
    await Promise.all(listeners.map((l) => l.removeAllChannels()));
  }
}

async function onEngine(name: string, database: string, o: RealtimeLoadOptions): Promise<Figure[]> {
  const size: LoadSize = o.quick
    ? { users: 20, writes: 200, concurrency: 10 }
    : { users: 100, writes: 1000, concurrency: 50 };
  o.log(`9: realtime load on ${name}: ${size.users} users/sockets, ${size.writes} writes`);
  const server = await startServerProcess(database);
  const userIds: string[] = [];
  try {
    const r = await runLoad(server, size, userIds);
    const floor = summarize(r.rpc);
    const figure = (feed: string, f: FeedResult): Figure => {
      const s = summarize(f.latencies);
      const problems = f.lost + f.duplicated + f.outOfOrder + f.leaked + r.failedWrites;
      return timing(
        10,
        `${name}: ${feed} delivery after the write's response, ${size.users} sockets, ${size.writes} writes`,
        s,
        {
          ratio: s.p50 / floor.p50,
          ratioOf: 'delivery / rpc round trip (p50)',
          target: 'p99 ≤ 100 ms, nothing lost',
          met: s.p99 <= 100 && problems === 0,
          note:
            `accepted ${r.writesPerSecond.toFixed(0)} writes/s, delivered ${f.deliveredPerSecond.toFixed(0)} events/s; ` +
            `lost ${f.lost}, duplicated ${f.duplicated}, out of order ${f.outOfOrder}, leaked ${f.leaked}, failed writes ${r.failedWrites}`,
        },
      );
    };
    return [
      figure('postgres_changes', r.changes),
      r.broadcast === undefined
        ? notMeasured(
            10,
            `${name}: Broadcast (userdb:<id>) delivery`,
            'the database does not send userdb broadcasts',
          )
        : figure('Broadcast (userdb:<id>)', r.broadcast),
      timing(10, `${name}: floor, userdb_set rpc round trip under the same load`, floor),
    ];
  } finally {
    await server.stop();
    if (database.startsWith('postgres')) {
      const db = new pg.Client({ connectionString: database });
      await db.connect();
      await db.query('delete from auth.users where id = any($1::uuid[])', [userIds]);
      await db.end();
    }
  }
}

/** Runs workload 10 on PGlite, and on PostgreSQL when `databaseUrl` is set. */
export async function realtimeLoadWorkload(o: RealtimeLoadOptions): Promise<Figure[]> {
  const figures = await onEngine('PGlite', 'memory', o);
  if (o.databaseUrl === undefined) {
    figures.push(notMeasured(10, 'PostgreSQL: realtime delivery under load', 'DATABASE_URL not set'));
    return figures;
  }
  // Runs in DATABASE_URL's database itself (the dev server prepares it idempotently) and
  // deletes the users it signed in afterwards (their rows go with them).
  figures.push(...(await onEngine('PostgreSQL', o.databaseUrl, o)));
  return figures;
}
