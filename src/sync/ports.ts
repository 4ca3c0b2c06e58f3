/**
 * What the sync engine needs from the local store. `LocalStore` (src/store) provides it through
 * {@link import('./store-adapter.js').syncStoreOf}; unit tests use an in-memory implementation.
 */
import type { CompactDoc, PatchOp } from '../doc/index.js';

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
  }): Promise<void>;
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
