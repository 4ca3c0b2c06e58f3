/**
 * Starting offline: `createUserDb({ supabase, userId })` opens from IndexedDB without waiting for
 * the session or the network; sync waits for a session of that user.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, signJwt, startDevServer } from '../../src/devserver/index.js';
import { AuthError, ForbiddenError } from '../../src/errors.js';
import { createUserDb } from '../../src/index.js';
import { ManualSignal } from '../../src/sync/env.js';
import type { SyncStatus } from '../../src/sync/state.js';
import {
  client,
  type Db,
  eventually,
  fastSync,
  newUser,
  openDevice,
  type RpcCounter,
  schema,
  serverDoc,
  signIn,
} from './helpers/devices.js';

const AUTH_KEY = 'userdb-test-auth';

let server: DevServer;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
});
afterEach(async () => {
  server.faults.reset();
  for (const off of cleanup.splice(0).reverse()) await off();
});
afterAll(async () => {
  await server?.stop();
});

/** The statuses of `db` as they change; `last()` is the current one. */
function watch(db: Db): { statuses: SyncStatus[]; last(): SyncStatus } {
  const statuses: SyncStatus[] = [];
  const sub = db.status$.subscribe((s) => statuses.push(s));
  cleanup.push(async () => sub.unsubscribe());
  return { statuses, last: () => statuses[statuses.length - 1] as SyncStatus };
}

/** Makes the persisted session expired for the client and for the server alike. */
function expireSession(storage: Map<string, string>): void {
  const stored = JSON.parse(storage.get(AUTH_KEY) as string) as {
    access_token: string;
    expires_at: number;
    user: { id: string };
  };
  const past = Math.floor(Date.now() / 1000) - 60;
  stored.access_token = signJwt(
    { sub: stored.user.id, role: 'authenticated', aud: 'authenticated', exp: past },
    server.jwtSecret,
  );
  stored.expires_at = past;
  storage.set(AUTH_KEY, JSON.stringify(stored));
}

function ids(doc: unknown): string[] {
  const t = (doc as { tables: Record<string, { rows: unknown[][] }> }).tables.projects;
  return (t?.rows ?? []).map((r) => String(r[0])).sort();
}

describe('createUserDb({ supabase, userId }) starts offline', () => {
  it('a device restarted with the server down and its token expired opens at once, writes, and syncs once back', async () => {
    const user = await newUser(server);
    const before = await openDevice(server, user);
    await before.db.table('projects').insert({ id: 'p_synced', title: 'synced', status: 'open' });
    await before.engine.flush();
    before.setOffline(true);
    await before.db.table('projects').insert({ id: 'p_pending', title: 'pending', status: 'open' });
    await eventually(() => before.engine.status.pendingCount === 1);
    await before.close();

    // restart: the server is unreachable and the stored access token has expired
    server.faults.offline(true);
    expireSession(before.authStorage);
    const expiredToken = (JSON.parse(before.authStorage.get(AUTH_KEY) as string) as { access_token: string })
      .access_token;
    const rpc: RpcCounter = { calls: [] };
    const sb = client(server, rpc, undefined, before.authStorage);
    cleanup.push(async () => void (await sb.removeAllChannels()));
    const db = (await createUserDb({
      supabase: sb,
      userId: user.id,
      schema,
      indexedDB: before.indexedDB,
      IDBKeyRange,
      sync: { ...fastSync, online: new ManualSignal(true) },
    })) as Db;
    cleanup.push(() => db.close());
    const status = watch(db);

    const projects = db.table('projects');
    expect((await projects.query().toArray()).map((r) => r.id).sort()).toEqual(['p_pending', 'p_synced']);
    await projects.insert({ id: 'p_offline', title: 'written offline', status: 'open' });
    await projects.update('p_pending', { status: 'done' });
    expect(await projects.get('p_offline')).toMatchObject({ title: 'written offline' });
    await eventually(() => status.last().pendingCount === 3 && status.last().leader);
    // sync is waiting for the session (supabase-js keeps retrying the refresh); nothing went out
    expect(rpc.calls).toEqual([]);

    server.faults.offline(false);
    await db.flush();
    await eventually(() => status.last().state === 'idle' && status.last().pendingCount === 0);
    const refreshed = JSON.parse(before.authStorage.get(AUTH_KEY) as string) as { access_token: string };
    expect(refreshed.access_token).not.toBe(expiredToken);
    const doc = await serverDoc(sb);
    expect(ids(doc)).toEqual(['p_offline', 'p_pending', 'p_synced']);
    expect(await projects.get('p_pending')).toMatchObject({ status: 'done' });
    expect(status.last().lastError).toBeNull();
  });

  it('without a session: retries with AuthError on status$, nothing is sent, and resumes on sign-in', async () => {
    const user = await newUser(server);
    const rpc: RpcCounter = { calls: [] };
    const sb = client(server, rpc);
    cleanup.push(async () => void (await sb.removeAllChannels()));
    const db = (await createUserDb({
      supabase: sb,
      userId: user.id,
      schema,
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      // a long backoff: the resumption below comes from SIGNED_IN, not from the retry timer
      sync: { ...fastSync, online: new ManualSignal(true), backoff: { baseMs: 60_000, maxMs: 60_000 } },
    })) as Db;
    cleanup.push(() => db.close());
    const status = watch(db);
    await db.table('projects').insert({ id: 'p_1', title: 'before sign-in', status: 'open' });
    // the declared table and the row
    // one edit pending (creating the declared tables on this new device is not counted)
    await eventually(() => status.last().lastError instanceof AuthError && status.last().pendingCount === 1);
    expect(status.last()).toMatchObject({ state: 'backoff', leader: true });
    expect(status.last().retryAt).not.toBeNull();
    expect(rpc.calls).toEqual([]);

    const { error } = await sb.auth.signInWithPassword({ email: user.email, password: 'password-123' });
    expect(error).toBeNull();
    await eventually(() => status.last().state === 'idle' && status.last().pendingCount === 0);
    expect(status.last().lastError).toBeNull();
    expect(ids(await serverDoc(sb))).toEqual(['p_1']);
  });

  it('a session of another user: opens locally, ForbiddenError on status$, nothing is sent', async () => {
    const owner = await newUser(server);
    const other = await newUser(server);
    const indexedDB = new IDBFactory();
    const local = await createUserDb({ userId: owner.id, schema, indexedDB, IDBKeyRange });
    await local.table('projects').insert({ id: 'p_owner', title: 'owner data', status: 'open' });
    await local.close();

    const rpc: RpcCounter = { calls: [] };
    const sb = await signIn(server, other, rpc);
    cleanup.push(async () => void (await sb.removeAllChannels()));
    const db = (await createUserDb({
      supabase: sb,
      userId: owner.id,
      schema,
      indexedDB,
      IDBKeyRange,
      sync: { ...fastSync, online: new ManualSignal(true) },
    })) as Db;
    cleanup.push(() => db.close());
    const status = watch(db);
    expect(await db.table('projects').get('p_owner')).toMatchObject({ title: 'owner data' });
    await db.table('projects').insert({ id: 'p_more', title: 'still local', status: 'open' });
    // the declared table, p_owner and p_more
    // two edits pending (creating the declared tables is not counted)
    await eventually(() => status.last().state === 'error' && status.last().pendingCount === 2);
    expect(status.last().lastError).toBeInstanceOf(ForbiddenError);

    // flushing again, or a new token of the other user, does not get it through
    await expect(db.flush()).rejects.toBeInstanceOf(ForbiddenError);
    const { error } = await sb.auth.refreshSession();
    expect(error).toBeNull();
    await expect(db.flush()).rejects.toBeInstanceOf(ForbiddenError);
    expect(status.last()).toMatchObject({ state: 'error', pendingCount: 2 });
    expect(rpc.calls).toEqual([]);
    expect((await db.table('projects').query().toArray()).map((r) => r.id).sort()).toEqual([
      'p_more',
      'p_owner',
    ]);
  });

  it('without userId and without a session: rejects with AuthError as before', async () => {
    const rpc: RpcCounter = { calls: [] };
    const sb = client(server, rpc);
    await expect(
      createUserDb({ supabase: sb, schema, indexedDB: new IDBFactory(), IDBKeyRange }),
    ).rejects.toBeInstanceOf(AuthError);
    expect(rpc.calls).toEqual([]);
  });
});
