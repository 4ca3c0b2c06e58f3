/**
 * What the sync engine needs from the local store. `LocalStore` (src/store) provides it through
 * {@link import('./store-adapter.js').syncStoreOf}; unit tests use an in-memory implementation.
 */
import type { CompactDoc, Json, PatchOp } from '../doc/index.js';

/** One outbox entry: the keyed patch of one local write or transaction. */
export interface SyncOutboxEntry {
  seq: number;
  ops: PatchOp[];
}

/** The last server-confirmed document and its token (`null` before the first sync). */
export interface SyncBase {
  doc: CompactDoc;
  updatedAt: string | null;
}

/**
 * One server-acknowledged change, appended to the store's log (see `LocalStore.appendLog`):
 * `ops` index-based as the server applied them, `keyed` the ops that take a view from the base
 * before to the base after (`null`: views rebuild, or keep their state when `exact`), `acked` the
 * last outbox seq this change acknowledges (own pushes), `exact` when `ops` are exactly the outbox
 * entries up to `acked` compiled on the base before.
 */
export interface SyncLogChange {
  before: string | null;
  after: string;
  ops: PatchOp[];
  keyed: PatchOp[] | null;
  clientId: string | null;
  batchSeq: number | null;
  acked: number | null;
  exact: boolean;
}

/**
 * A cell value this device wrote and the server acknowledged. `cell` is the cell's id: escaped
 * table, row key and field joined by `/` (see `cellId` in delta.ts).
 */
export interface OwnWrite {
  cell: string;
  value: Json;
}

/** A foreign change's `test` op on a cell it then overwrote: its writer expected `expected` there. */
export interface CellCheck {
  cell: string;
  expected: Json;
}

/** A rewritten outbox entry; empty `ops` deletes the entry. */
export interface RewrittenEntry {
  seq: number;
  ops: PatchOp[];
}

/**
 * The local store as the sync engine uses it. Every method is atomic; `rebase` runs its callback
 * inside the same transaction that stores the new base, so a crash can never leave a new base with
 * an outbox that was not rebased on it (and each conflict is reported once).
 */
export interface SyncStore {
  /** This device's persisted client id. */
  readonly clientId: string;
  readBase(): Promise<SyncBase>;
  /**
   * Outbox entries in seq order: with `upToSeq`, all entries up to it; otherwise from the first,
   * stopping before their JSON size would exceed `maxBytes` (the first entry is always included).
   */
  readOutbox(options: { maxBytes?: number; upToSeq?: number }): Promise<SyncOutboxEntry[]>;
  /** Number of outbox entries. */
  countOutbox(): Promise<number>;
  /** The seq of the last outbox entry, 0 when the outbox is empty. */
  lastSeq(): Promise<number>;
  /** The seq of the first outbox entry, 0 when the outbox is empty. */
  firstSeq(): Promise<number>;
  /** The persisted next batch sequence number (starts at 1). */
  getNextBatchSeq(): Promise<number>;
  setNextBatchSeq(next: number): Promise<void>;
  /**
   * After a push: the new base and token, and deletion of the entries `seq <= upToSeq`, at once.
   * `exact`: `newBase` is the stored base with those entries applied, so views that already show
   * them stay as they are instead of rebuilding from the new base.
   */
  commitPush(args: {
    newBase: CompactDoc;
    updatedAt: string;
    upToSeq: number;
    exact?: boolean;
    /** The index-based ops the server applied on the base: stores may log them instead of `newBase`. */
    ops?: PatchOp[] | undefined;
    /**
     * The cells the push wrote: remembered, in the same transaction, for `overridden` reports (up
     * to a bound; the oldest are forgotten), and kept across reloads by persistent stores.
     */
    ownWrites?: readonly OwnWrite[] | undefined;
  }): Promise<void>;
  /**
   * After a pull by delta: in one transaction, deletes the entries `seq <= dropUpToSeq` and those
   * acknowledged by own changes, rewrites the remaining entries through `rewrite` (synchronous,
   * pure), and appends `changes` (the new base is `newBase`,
   * its token `updatedAt`). In the same transaction, the remembered own writes named by `checks`
   * whose value is the one expected are forgotten and returned (`overridden`: reported once, by
   * whichever instance stores the change), and those `overwritten` names (ids, prefixes ending with
   * `/`, or `''` for all) are forgotten.
   */
  appendChanges(
    args: {
      changes: SyncLogChange[];
      newBase: CompactDoc;
      updatedAt: string;
      dropUpToSeq?: number | undefined;
      checks?: readonly CellCheck[] | undefined;
      overwritten?: readonly string[] | undefined;
    },
    rewrite: (entries: SyncOutboxEntry[]) => RewrittenEntry[],
  ): Promise<{ overridden: readonly string[] }>;
  /**
   * Folds the logged changes into the stored base when the log is past the given size (or at all
   * with `force`); a background task, never on the write path. Optional: stores without a log omit it.
   */
  compact?(options: { force?: boolean }): Promise<void>;
  /**
   * After a pull: in one transaction, deletes the entries `seq <= dropUpToSeq` (a batch the server
   * had already applied), reads the remaining entries, passes them to `rewrite` (synchronous, pure),
   * stores the new base and the rewritten entries.
   */
  rebase(
    args: { doc: CompactDoc; updatedAt: string; dropUpToSeq?: number | undefined },
    rewrite: (entries: SyncOutboxEntry[]) => RewrittenEntry[],
  ): Promise<void>;
  /**
   * Moves outbox entries aside (held) in one transaction, each with why: an entry the server refuses
   * for good, and the later entries that depend on it. They are no longer pushed or replayed, and
   * stay listed until the app retries or discards them (`db.heldEntries()`).
   */
  holdEntries(items: readonly { seq: number; reason: string }[]): Promise<void>;
  /** Calls `listener` after changes of the outbox or base by any instance on the same database. */
  onChange(listener: (change: { meta: boolean; outbox: boolean }) => void): () => void;
}
