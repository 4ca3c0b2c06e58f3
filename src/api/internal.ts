/**
 * Internal hooks for the sync engine (not part of the public API; not exported from `supabase-userdb`).
 *
 * - `localStore(db)`: the {@link LocalStore} — `readOutbox({ afterSeq, maxBytes })`,
 *   `commitPush({ newBase, updatedAt, upToSeq, nextBatchSeq?, exact? })` (base stored and pushed entries
 *   deleted in one IndexedDB transaction), `replaceBase(doc, updatedAt)` after a pull, `readBase()`,
 *   `clientId`, `getNextBatchSeq()`/`setNextBatchSeq(n)`, and `onChange(listener)`: base or outbox
 *   changed, in this instance or another one on the same IndexedDB (`ownAppendsOnly` marks a change
 *   that is only this instance's own writes).
 * - `rebuildView(db)`: view := stored base + outbox replayed with `rebase`; notifies only the live
 *   queries of tables that changed; serialized with writes; returns the changed tables and the rebase
 *   conflicts. Every database (in every tab) also does this by itself when it sees a new base through
 *   the store's change notification, so calling it is needed only to await the result. After
 *   `commitPush({ exact: true })` views that already had the pushed entries are kept as they are.
 */
import type { LocalStore } from '../store/index.js';
import type { RebuildResult, UserDb } from './userdb.js';

/**
 * The local store of a database.
 *
 * @example
 * ```ts
 * const batch = await localStore(db).readOutbox({ maxBytes: 256 * 1024 });
 * ```
 */
export function localStore(db: UserDb): LocalStore {
  return db.localStore;
}

/**
 * Rebuilds a database's view from its store (after the sync engine stored a new base).
 *
 * @example
 * ```ts
 * await localStore(db).replaceBase(pulled.doc, pulled.updatedAt);
 * const { conflicts } = await rebuildView(db);
 * ```
 */
export function rebuildView(db: UserDb): Promise<RebuildResult> {
  return db.rebuild();
}
