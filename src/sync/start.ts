/**
 * Wiring of the sync engine for `createUserDb({ supabase })`: reads the user from the client's
 * session, and starts a {@link SyncEngine} on a database's local store.
 */
import { AuthError } from '../errors.js';
import { type SupabaseClient, SupabaseRemote } from '../remote/index.js';
import type { LocalStore } from '../store/index.js';
import { SyncEngine, type SyncOptions } from './engine.js';
import { lockScopeFor, webLocks } from './leader.js';
import { syncStoreOf } from './store-adapter.js';

/** The authenticated supabase-js client a database syncs through. */
export type SyncClient = SupabaseClient;

/**
 * The id of the user signed in on `client`. Throws {@link AuthError} when there is no session.
 *
 * @example
 * ```ts
 * const userId = await sessionUserId(supabase);
 * ```
 */
export async function sessionUserId(client: SyncClient): Promise<string> {
  const userId = await new SupabaseRemote(client).currentUserId();
  if (userId === null) throw new AuthError('createUserDb: the supabase client has no session; sign in first');
  return userId;
}

/** What {@link startSync} needs. */
export interface StartSyncOptions {
  client: SyncClient;
  userId: string;
  store: LocalStore;
  /** The IndexedDB factory of the database: instances on one factory share one leader lock. */
  indexedDB?: IDBFactory | undefined;
  options?: SyncOptions | undefined;
}

/**
 * Starts syncing a local store through `client`. The leader lock is Web Locks where present, else
 * an in-process lock per IndexedDB factory (so two "browsers" in one test process each elect
 * their own leader).
 *
 * @example
 * ```ts
 * const engine = startSync({ client: supabase, userId, store });
 * ```
 */
export function startSync(setup: StartSyncOptions): SyncEngine {
  const options = setup.options ?? {};
  const locks = options.locks ?? webLocks() ?? lockScopeFor(setup.indexedDB ?? globalThis.indexedDB);
  return new SyncEngine({
    store: syncStoreOf(setup.store),
    remote: new SupabaseRemote(setup.client, { userId: setup.userId, delta: options.delta }),
    userId: setup.userId,
    options: { ...options, locks },
  });
}
