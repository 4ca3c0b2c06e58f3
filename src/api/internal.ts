/**
 * Internal hooks for the sync engine (not part of the public API; not exported from `userdb`).
 *
 * - `localStore(db)`: the {@link LocalStore} — `readOutbox({ afterSeq, maxBytes })`, `commitPush(...)`,
 *   `replaceBase(doc, updatedAt)`, `readBase()`, `clientId`, `getNextBatchSeq()`/`setNextBatchSeq(n)`,
 *   `onChange(listener)` (base or outbox changed, in this instance or another one on the same IndexedDB).
 * - `rebuildView(db)`: view := stored base + outbox replayed with `rebase`; notifies only the live
 *   queries of tables that changed; serialized with writes. A database also rebuilds by itself when it
 *   sees the base generation change through `onChange`, so calling this is needed only to await it.
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
