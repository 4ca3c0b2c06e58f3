import type { WebSocketLikeConstructor } from '@supabase/realtime-js';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import WebSocket from 'ws';
import { z } from 'zod';
import type { DevServer } from '../../../src/devserver/index.js';
import { createUserDb, defineSchema, type UserDb } from '../../../src/index.js';
import type { SyncOptions } from '../../../src/sync/engine.js';
import { ManualSignal } from '../../../src/sync/env.js';
import type { SyncConflict } from '../../../src/sync/rebase.js';
import type { SyncStatus } from '../../../src/sync/state.js';

export const schema = defineSchema({
  projects: {
    fields: { id: z.string(), title: z.string(), status: z.string(), n: z.int().nullable().optional() },
    primaryKey: ['id'],
  },
});

export type Db = UserDb<typeof schema extends { definition: infer S } ? S : never>;

export interface RpcCounter {
  calls: string[];
  /** Bytes of RPC response bodies received (when counted). */
  received?: number;
}

/** A supabase-js client for the dev server that counts its RPCs; `gate.offline` makes its fetch fail. */
export function client(
  server: DevServer,
  counter?: RpcCounter,
  gate?: { offline: boolean },
  authStorage?: Map<string, string>,
): SupabaseClient {
  const storage = authStorage ?? new Map<string, string>();
  return createClient(server.url, server.anonKey, {
    auth: {
      persistSession: true,
      autoRefreshToken: false,
      detectSessionInUrl: false,
      storageKey: 'userdb-test-auth',
      storage: {
        getItem: (k) => storage.get(k) ?? null,
        setItem: (k, v) => void storage.set(k, v),
        removeItem: (k) => void storage.delete(k),
      },
    },
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor, reconnectAfterMs: () => 20 },
    global: {
      fetch: (input, init) => {
        const url = String(input instanceof Request ? input.url : input);
        const m = /\/rest\/v1\/rpc\/([a-z_]+)/.exec(url);
        if (gate?.offline) return Promise.reject(new TypeError('fetch failed (device offline)'));
        if (m?.[1] !== undefined) counter?.calls.push(m[1]);
        if (m?.[1] !== undefined && counter?.received !== undefined) {
          return fetch(input, init).then(async (res) => {
            counter.received = (counter.received ?? 0) + (await res.clone().arrayBuffer()).byteLength;
            return res;
          });
        }
        if (process.env.SYNC_DEBUG && m?.[1] !== undefined) {
          return fetch(input, init).then(
            async (res) => {
              console.log(
                'RPC',
                m[1],
                String(init?.body).slice(0, 300),
                res.status,
                (await res.clone().text()).slice(0, 300),
              );
              return res;
            },
            (e) => {
              console.log('RPC', m[1], String(init?.body).slice(0, 300), 'FAILED', String(e));
              throw e;
            },
          );
        }
        return fetch(input, init);
      },
    },
  });
}

let counter = 0;

export interface User {
  id: string;
  email: string;
  sb: SupabaseClient;
}

/** A new email user, signed in on a first client. */
export async function newUser(server: DevServer): Promise<User> {
  counter += 1;
  const email = `sync${counter}-${process.pid}-${Date.now()}@example.com`;
  const sb = client(server);
  const { data, error } = await sb.auth.signUp({ email, password: 'password-123' });
  if (error !== null || data.user === null) throw error ?? new Error('no user');
  return { id: data.user.id, email, sb };
}

/** A client signed in as `user` (another device of that user). */
export async function signIn(
  server: DevServer,
  user: User,
  rpc?: RpcCounter,
  gate?: { offline: boolean },
  authStorage?: Map<string, string>,
): Promise<SupabaseClient> {
  const sb = client(server, rpc, gate, authStorage);
  const { error } = await sb.auth.signInWithPassword({ email: user.email, password: 'password-123' });
  if (error !== null) throw error;
  return sb;
}

/** The sync side of a device, read through the public API (`db.status$`, `db.flush()`, `db.pull()`). */
export interface DeviceSync {
  readonly status: SyncStatus;
  flush(): Promise<void>;
  pull(): Promise<void>;
}

export interface Device {
  db: Db;
  engine: DeviceSync;
  sb: SupabaseClient;
  rpc: RpcCounter;
  indexedDB: IDBFactory;
  /** The client's persisted session (key `userdb-test-auth`), to tamper with in tests. */
  authStorage: Map<string, string>;
  statuses: SyncStatus[];
  conflicts: SyncConflict[];
  /** Cuts this device's HTTP (and tells the engine, like navigator.onLine would); Realtime stays up. */
  setOffline(offline: boolean): void;
  close(): Promise<void>;
}

export const fastSync: SyncOptions = {
  pollIntervalMs: 0,
  pushDebounceMs: 5,
  backoff: { baseMs: 20, maxMs: 200 },
};

/**
 * Opens a device through the public API, `createUserDb({ supabase, schema, sync })`: its own
 * IndexedDB (a browser; instances on one factory are tabs), client, local database and sync.
 */
export async function openDevice(
  server: DevServer,
  user: User,
  options: { sync?: SyncOptions; indexedDB?: IDBFactory } = {},
): Promise<Device> {
  const rpc: RpcCounter = { calls: [], received: 0 };
  const gate = { offline: false };
  const online = new ManualSignal(true);
  const authStorage = new Map<string, string>();
  const sb = await signIn(server, user, rpc, gate, authStorage);
  const indexedDB = options.indexedDB ?? new IDBFactory();
  const db = (await createUserDb({
    supabase: sb,
    schema,
    indexedDB,
    IDBKeyRange,
    sync: { online, ...fastSync, ...options.sync },
  })) as Db;
  const statuses: SyncStatus[] = [];
  const conflicts: SyncConflict[] = [];
  db.status$.subscribe((s) => statuses.push(s));
  db.conflicts$.subscribe((c) => conflicts.push(c));
  return {
    db,
    engine: {
      get status() {
        return statuses[statuses.length - 1] as SyncStatus;
      },
      flush: () => db.flush(),
      pull: () => db.pull(),
    },
    sb,
    rpc,
    indexedDB,
    authStorage,
    statuses,
    conflicts,
    setOffline(offline) {
      gate.offline = offline;
      online.set(!offline);
    },
    async close() {
      await db.close();
      await sb.removeAllChannels();
    },
  };
}

/** Polls `check` until it holds (fails after `timeoutMs`). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The server's document of a user, read as that user. */
export async function serverDoc(sb: SupabaseClient): Promise<unknown> {
  const { data, error } = await sb.rpc('userdb_pull', { since: null });
  if (error !== null) throw new Error(error.message);
  return (data as { db: unknown }).db;
}

/** Waits until every device is idle with nothing pending and holds the server's document. */
export async function converged(devices: Device[], timeoutMs = 20_000): Promise<void> {
  await eventually(
    async () => {
      for (const d of devices) {
        const s = d.engine.status;
        if (s.pendingCount !== 0 || s.state !== 'idle') return false;
      }
      const server = stableJson(sortDoc(await serverDoc(devices[0]!.sb)));
      for (const d of devices) {
        if (stableJson(sortDoc(await d.db.export())) !== server) return false;
      }
      return true;
    },
    timeoutMs,
    'convergence',
  );
}

/** JSON with object keys sorted (jsonb reorders keys). */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** A document with rows sorted by their JSON (row order is not meaningful). */
export function sortDoc(doc: unknown): unknown {
  const d = structuredClone(doc) as { tables?: Record<string, { rows: unknown[] }> };
  for (const t of Object.values(d.tables ?? {}))
    t.rows.sort((a, b) => stableJson(a).localeCompare(stableJson(b)));
  return d;
}

/**
 * Two devices of a new user, in sync (pushed to `track`, for the test to close them). With
 * `firstRow`, device A first inserts `projects/p_1` and both converge on it.
 */
export async function devicePair(
  server: DevServer,
  track: Device[],
  options: { firstRow?: boolean } = {},
): Promise<[Device, Device]> {
  const user = await newUser(server);
  const a = await openDevice(server, user);
  const b = await openDevice(server, user);
  track.push(a, b);
  if (options.firstRow === true) {
    await a.db.table('projects').insert({ id: 'p_1', title: 'First', status: 'open' });
    await a.engine.flush();
  }
  await converged([a, b]);
  return [a, b];
}
