/**
 * One push attempt (ARCHITECTURE §4): take a batch of the outbox, compile it against the base, send
 * it with the base's token, and store the outcome.
 *
 * Exactly-once: a batch is always a prefix of the outbox, and its `batch_seq` is the seq of its last
 * entry. Before sending, `nextBatchSeq` is persisted as `batch_seq + 1`. So while entries with
 * `seq < nextBatchSeq` remain in the outbox, a batch was sent whose answer never arrived: it is
 * resent with exactly the same entries and `batch_seq` (also after a reload or by another tab), and
 * the server answers `applied: false` if it had committed it.
 */
import { applyCompact, compile, type PatchOp } from '../doc/index.js';
import { BadPatchError, UserDbError } from '../errors.js';
import type { PatchBatch, Remote } from '../remote/index.js';
import { cellWrites } from './delta.js';
import { dependentsOf, heldReason, isEntryError } from './held.js';
import type { SyncOutboxEntry, SyncStore } from './ports.js';
import { rebaseOutbox } from './rebase.js';

/** What {@link pushOnce} achieved. */
export type PushOutcome =
  /** Nothing to push. */
  | { kind: 'empty' }
  /** The base has no server token yet: pull (`userdb_init`) first. */
  | { kind: 'need_base' }
  /** The batch was applied; the new base is stored and the entries are gone. */
  | { kind: 'pushed'; updatedAt: string; upToSeq: number }
  /** The server had applied this batch before (lost response): pull, then drop `upToSeq`. */
  | { kind: 'already_applied'; upToSeq: number }
  /** The batch was too large for the server: retry at once with the smaller `maxBytes`. */
  | { kind: 'shrink'; maxBytes: number }
  /**
   * The server refused one entry for good: it and the later entries that depend on it are to be
   * moved aside (`hold` for {@link SyncStore.holdEntries}; listed by `db.heldEntries()`); the rest
   * of the outbox keeps syncing.
   */
  | { kind: 'held'; seqs: number[]; error: UserDbError; hold: { seq: number; reason: string }[] };

/** What a push needs. */
export interface PushContext {
  store: SyncStore;
  remote: Remote;
  /** Byte cap of a new batch. */
  maxBytes: number;
}

/** UTF-8 bytes of `text` (what the store's cap and the server count), without encoding it. */
export function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** UTF-8 bytes of the entries' ops as JSON, counted as the store's `maxBytes` cap counts them. */
export function bytesOf(entries: readonly SyncOutboxEntry[]): number {
  let n = 0;
  for (const e of entries) n += utf8Bytes(JSON.stringify(e.ops));
  return n;
}

function isBadPatch(e: unknown): boolean {
  return e instanceof UserDbError && e.code === 'bad_patch';
}

/**
 * Pushes one batch. Throws the typed errors of {@link Remote.patch} (a `ConflictError` means the
 * server did not apply it: pull, rebase, retry), and `BadPatchError` when the outbox cannot be
 * compiled even after a rebase on the base.
 *
 * @example
 * ```ts
 * const outcome = await pushOnce({ store, remote, maxBytes: 1 << 20 });
 * ```
 */
export async function pushOnce(ctx: PushContext): Promise<PushOutcome> {
  const { store, remote } = ctx;
  const base = await store.readBase();
  if (base.updatedAt === null) return { kind: 'need_base' };
  const nextBatchSeq = await store.getNextBatchSeq();
  const capped = await store.readOutbox({ maxBytes: ctx.maxBytes });
  const first = capped[0];
  if (first === undefined) return { kind: 'empty' };

  let entries: SyncOutboxEntry[];
  let batchSeq: number;
  if (first.seq < nextBatchSeq) {
    // a batch is in flight with an unknown outcome: resend exactly it
    batchSeq = nextBatchSeq - 1;
    entries = await store.readOutbox({ upToSeq: batchSeq });
  } else {
    entries = capped;
    batchSeq = (capped[capped.length - 1] as SyncOutboxEntry).seq;
    await store.setNextBatchSeq(batchSeq + 1); // persisted before the request leaves
  }

  // Normally the outbox applies to the base as stored. Entries kept in their original form (table
  // creations) or written against a view older than the base do not: then the batch is compiled in
  // its form rebased on the base (in memory; the outbox is rewritten by pulls only).
  let ops: PatchOp[];
  try {
    ops = compile(
      entries.flatMap((e) => e.ops),
      base.doc,
    );
  } catch (e) {
    if (!isBadPatch(e)) throw e;
    try {
      const rebased = rebaseOutbox(base.doc, entries).rebased;
      ops = compile(
        rebased.flatMap((x) => x.ops),
        base.doc,
      );
    } catch (e2) {
      if (!isBadPatch(e2)) throw e2;
      const err = new BadPatchError(
        `the outbox does not apply to the server document: ${(e2 as Error).message}`,
        { cause: e2 },
      );
      return isolate(store, entries, err);
    }
  }

  if (ops.length === 0) {
    // every entry of the batch was dropped by a rebase: nothing to send
    await store.commitPush({
      newBase: base.doc,
      updatedAt: base.updatedAt,
      upToSeq: batchSeq,
      exact: true,
      ops: [],
    });
    return { kind: 'pushed', updatedAt: base.updatedAt, upToSeq: batchSeq };
  }

  const batch: PatchBatch = { ops, expectedUpdatedAt: base.updatedAt, clientId: store.clientId, batchSeq };
  let result: Awaited<ReturnType<Remote['patch']>>;
  try {
    result = await remote.patch(batch);
  } catch (e) {
    // not applied (a duplicate would have been answered first): find the entry at fault
    if (isEntryError(e)) return isolate(store, entries, e);
    throw e;
  }
  if (!result.applied) return { kind: 'already_applied', upToSeq: batchSeq };
  // base + this batch, compiled from the same entries every view has applied: views keep their state
  const newBase = applyCompact(base.doc, ops);
  await store.commitPush({
    newBase,
    updatedAt: result.updatedAt,
    upToSeq: batchSeq,
    exact: true,
    ops,
    // remembered with the push (persisted): a later change declaring it overrode one reports it
    ownWrites: cellWrites(base.doc, ops),
  });
  return { kind: 'pushed', updatedAt: result.updatedAt, upToSeq: batchSeq };
}

/**
 * A batch the server refused for its content (not applied): with several entries, send a smaller
 * prefix (halving until one entry is left); a single entry is held with its dependents.
 */
async function isolate(
  store: SyncStore,
  entries: SyncOutboxEntry[],
  error: UserDbError,
): Promise<PushOutcome> {
  const first = entries[0] as SyncOutboxEntry;
  if (entries.length > 1) {
    await store.setNextBatchSeq(first.seq);
    return { kind: 'shrink', maxBytes: Math.max(1, Math.floor(bytesOf(entries) / 2)) };
  }
  const later = (await store.readOutbox({})).filter((e) => e.seq > first.seq);
  const waiting = dependentsOf(first, later);
  const hold = [
    { seq: first.seq, reason: heldReason(error) },
    ...waiting.map((seq) => ({ seq, reason: heldReason(error, first.seq) })),
  ];
  return { kind: 'held', seqs: [first.seq, ...waiting], error, hold };
}
