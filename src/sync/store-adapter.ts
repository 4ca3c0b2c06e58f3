/**
 * The {@link SyncStore} port over userdb's Dexie-backed {@link LocalStore}.
 */
import type { LocalStore } from '../store/index.js';
import type { SyncBase, SyncStore } from './ports.js';

/** Log size past which an idle leader folds the log into the base (records). */
const COMPACT_RECORDS = 256;
/** Log size past which an idle leader folds the log into the base (bytes of ops). */
const COMPACT_BYTES = 256 * 1024;

/**
 * Adapts a {@link LocalStore} for the sync engine. The base is cached by its generation (a tiny
 * record), so a push does not re-read and re-validate the whole document every time; the base the
 * engine itself stores becomes the cached one (the leader is the only writer of the base).
 *
 * @example
 * ```ts
 * const engine = new SyncEngine({ store: syncStoreOf(localStore), remote, userId });
 * ```
 */
export function syncStoreOf(store: LocalStore): SyncStore {
  let cached: { generation: number; base: SyncBase } | null = null;
  return {
    get clientId() {
      return store.clientId;
    },
    async readBase() {
      const generation = await store.readGeneration();
      if (cached !== null && cached.generation === generation) return cached.base;
      const record = await store.readBase();
      cached = { generation: record.generation, base: { doc: record.doc, updatedAt: record.updatedAt } };
      return cached.base;
    },
    readOutbox: (options) =>
      options.upToSeq !== undefined
        ? store.readOutboxUpTo(options.upToSeq)
        : store.readOutbox(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    countOutbox: () => store.countOutbox(),
    lastSeq: async () => (await store.outboxBounds()).last,
    firstSeq: async () => (await store.outboxBounds()).first,
    getNextBatchSeq: () => store.getNextBatchSeq(),
    setNextBatchSeq: (next) => store.setNextBatchSeq(next),
    async commitPush(args) {
      const before = cached?.base.updatedAt ?? null;
      // the ops are logged (O(change)); the whole base is written only by a compaction
      await store.commitPush(args.ops === undefined ? args : { ...args, before });
      // only the leader writes the base: what it just wrote is the current base
      cached = {
        generation: await store.readGeneration(),
        base: { doc: args.newBase, updatedAt: args.updatedAt },
      };
    },
    async rebase(args, rewrite) {
      await store.rebaseOutbox(args, rewrite);
      cached = {
        generation: await store.readGeneration(),
        base: { doc: args.doc, updatedAt: args.updatedAt },
      };
    },
    async appendChanges(args, rewrite) {
      const own =
        args.checks === undefined && args.overwritten === undefined
          ? undefined
          : { checks: args.checks, overwritten: args.overwritten };
      const result = await store.appendLog(
        { changes: args.changes, dropUpToSeq: args.dropUpToSeq, own },
        rewrite,
      );
      cached = {
        generation: await store.readGeneration(),
        base: { doc: args.newBase, updatedAt: args.updatedAt },
      };
      return result;
    },
    async compact(options) {
      const { records, bytes } = await store.logSize();
      if (records === 0) return;
      if (options.force !== true && records < COMPACT_RECORDS && bytes < COMPACT_BYTES) return;
      const generation = await store.readGeneration();
      if (cached === null || cached.generation !== generation) {
        const record = await store.readBase();
        cached = { generation: record.generation, base: { doc: record.doc, updatedAt: record.updatedAt } };
      }
      await store.compact({
        generation: cached.generation,
        doc: cached.base.doc,
        updatedAt: cached.base.updatedAt,
      });
    },
    holdEntries: (items) => store.quarantineEntries(items),
    onChange: (listener) => store.onChange(listener),
  };
}
