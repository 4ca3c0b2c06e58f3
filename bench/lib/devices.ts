/**
 * Synced devices for the sync workloads: each one is a "browser" of its own (fake-indexeddb
 * factory, so its own leader lock; supabase-js client over the dev server with `ws` for Realtime),
 * opened with `createUserDb({ supabase, schema })`, so it syncs with the default timings. The
 * client's fetch records the request body bytes and the duration of every RPC, and a switch cuts
 * its network (as a device going offline).
 */
import type { WebSocketLikeConstructor } from '@supabase/realtime-js';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import WebSocket from 'ws';
import { createUserDb, type UserDb } from '../../src/index.js';
import type { SyncOptions } from '../../src/sync/engine.js';
import { ManualSignal } from '../../src/sync/env.js';
import type { SyncStatus } from '../../src/sync/index.js';
import { schema } from './data.js';
import type { ServerAddress } from './server-process.js';

/** One RPC as the device sent it. */
export interface RpcRecord {
  fn: string;
  requestBytes: number;
  /** From the request to the response headers (ms; NaN until answered). */
  ms: number;
}

/**
 * Bytes a device received. `rpc` counts RPC answers as they crossed the wire (gzipped when the
 * server compressed them: the dev server does for answers of 1 KiB and more, as hosted Supabase's
 * gateway does), `rpcDecoded` the same answers after decoding.
 */
export interface Received {
  rpc: number;
  rpcDecoded: number;
  realtime: number;
}

/** A device: local database, sync engine, client, and what went over its wire. */
export interface Device {
  db: UserDb<typeof schema.definition>;
  sb: SupabaseClient;
  rpcs: RpcRecord[];
  /** Bytes received: RPC response bodies and Realtime frames. */
  received: Received;
  /** The device's IndexedDB (to reopen it, as after a sleep). */
  indexedDB: IDBFactory;
  /** Resolves once every write made before the call is on the server. */
  flush(): Promise<void>;
  setOffline(offline: boolean): void;
  /** Resolves when the engine is idle with nothing pending. */
  settled(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A user of the dev server (email + password). */
export interface User {
  id: string;
  email: string;
}

/** A supabase-js client for the dev server whose RPC request bytes go to `rpcs`. */
export function makeClient(
  server: ServerAddress,
  rpcs: RpcRecord[],
  gate: { offline: boolean },
  received?: Received,
): SupabaseClient {
  class CountingWebSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        if (received === undefined) return;
        received.realtime += Array.isArray(data)
          ? data.reduce((n, b) => n + b.byteLength, 0)
          : data.byteLength;
      });
    }
  }
  return createClient(server.url, server.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: CountingWebSocket as unknown as WebSocketLikeConstructor },
    global: {
      fetch: (input, init) => {
        if (gate.offline) return Promise.reject(new TypeError('fetch failed (device offline)'));
        const url = String(input instanceof Request ? input.url : input);
        const m = /\/rest\/v1\/rpc\/([a-z_]+)/.exec(url);
        if (m?.[1] === undefined) return fetch(input, init);
        const body = init?.body;
        const record: RpcRecord = {
          fn: m[1],
          requestBytes: typeof body === 'string' ? Buffer.byteLength(body) : 0,
          ms: Number.NaN,
        };
        rpcs.push(record);
        const t0 = performance.now();
        return fetch(input, init).then(async (res) => {
          record.ms = performance.now() - t0;
          if (received !== undefined) {
            const decoded = (await res.clone().arrayBuffer()).byteLength;
            const length = Number(res.headers.get('content-length'));
            received.rpcDecoded += decoded;
            received.rpc += res.headers.has('content-encoding') && length > 0 ? length : decoded;
          }
          return res;
        });
      },
    },
  });
}

let users = 0;

/** Signs up a new user. */
export async function newUser(server: ServerAddress): Promise<User> {
  users += 1;
  const email = `bench${users}-${process.pid}@bench.invalid`;
  const sb = makeClient(server, [], { offline: false });
  const { data, error } = await sb.auth.signUp({ email, password: 'bench-password-1' });
  if (error !== null || data.user === null) throw error ?? new Error('sign-up returned no user');
  return { id: data.user.id, email };
}

/** A client signed in as `user`, recording its RPCs. */
export async function signIn(
  server: ServerAddress,
  user: User,
  rpcs: RpcRecord[] = [],
  gate = { offline: false },
  received?: Received,
): Promise<SupabaseClient> {
  const sb = makeClient(server, rpcs, gate, received);
  const { error } = await sb.auth.signInWithPassword({ email: user.email, password: 'bench-password-1' });
  if (error !== null) throw error;
  return sb;
}

/** Opens a device of `user` and waits for its first sync. */
export async function openDevice(
  server: ServerAddress,
  user: User,
  options: { sync?: SyncOptions; indexedDB?: IDBFactory } = {},
): Promise<Device> {
  const rpcs: RpcRecord[] = [];
  const gate = { offline: false };
  const online = new ManualSignal(true);
  const received: Received = { rpc: 0, rpcDecoded: 0, realtime: 0 };
  const sb = await signIn(server, user, rpcs, gate, received);
  const indexedDB = options.indexedDB ?? new IDBFactory();
  // createUserDb({ supabase }) reads the user from the session and starts the sync engine with
  // its default timings; only connectivity and focus are driven by the benchmark.
  const db = await createUserDb({
    supabase: sb,
    schema,
    indexedDB,
    IDBKeyRange,
    sync: { online, focus: new ManualSignal(true), ...options.sync },
  });
  const device: Device = {
    db,
    sb,
    received,
    indexedDB,
    flush: () => db.flush(),
    rpcs,
    setOffline(offline) {
      gate.offline = offline;
      online.set(!offline);
    },
    settled: (timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          sub.unsubscribe();
          reject(new Error(`device did not settle within ${timeoutMs} ms: ${JSON.stringify(last)}`));
        }, timeoutMs);
        let last: SyncStatus | undefined;
        const sub = db.status$.subscribe((s: SyncStatus) => {
          last = s;
          if (s.state === 'idle' && s.pendingCount === 0 && s.leader && s.lastSyncedAt !== null) {
            clearTimeout(timer);
            queueMicrotask(() => sub.unsubscribe());
            resolve();
          }
        });
      }),
    async close() {
      await db.close();
      await sb.removeAllChannels();
    },
  };
  await device.settled();
  return device;
}
