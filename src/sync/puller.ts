/**
 * One pull (ARCHITECTURE §5): get the server document when it is newer than the base (from a
 * Realtime record when that was whole and valid, else `userdb_pull(since)`), then store it as the
 * new base with the outbox rebased on it, in one transaction.
 */
import type { Remote, RemoteSnapshot } from '../remote/index.js';
import { compareTokens } from '../remote/index.js';
import type { SyncStore } from './ports.js';
import { type ConflictHandler, rebaseOutbox, type SyncConflict } from './rebase.js';

/** What a pull needs. */
export interface PullContext {
  store: SyncStore;
  remote: Remote;
  handlers: Readonly<Record<string, ConflictHandler>>;
}

/** What to pull. */
export interface PullRequest {
  /** A document received through Realtime; used instead of a request when newer than the base. */
  snapshot?: RemoteSnapshot | undefined;
  /** Use `userdb_init()` (the row may not exist yet, or the base has no token). */
  init?: boolean | undefined;
  /** Entries up to this seq were applied by the server already: drop them instead of rebasing. */
  dropUpToSeq?: number | undefined;
  /** Take the server's document even when its token is not newer (the server went back in time). */
  force?: boolean | undefined;
}

/** What {@link pullOnce} did. */
export interface PullOutcome {
  /** The new base token, or `null` when the base did not change. */
  updatedAt: string | null;
  conflicts: SyncConflict[];
}

/**
 * Pulls once and stores the result. Throws the typed errors of {@link Remote} (an invalid server
 * document is an `InvalidRemoteDocumentError`).
 *
 * @example
 * ```ts
 * const { updatedAt, conflicts } = await pullOnce({ store, remote, handlers: {} }, {});
 * ```
 */
export async function pullOnce(ctx: PullContext, request: PullRequest): Promise<PullOutcome> {
  const { store, remote } = ctx;
  const base = await store.readBase();
  let snapshot: RemoteSnapshot | null = null;
  const candidate = request.snapshot;
  if (
    candidate !== undefined &&
    (base.updatedAt === null || compareTokens(candidate.updatedAt, base.updatedAt) > 0)
  ) {
    snapshot = candidate;
  } else if (candidate === undefined || request.dropUpToSeq !== undefined || request.force === true) {
    const whole = request.dropUpToSeq !== undefined || request.force === true;
    snapshot =
      request.init === true || base.updatedAt === null
        ? await remote.init()
        : await remote.pull(whole ? null : base.updatedAt);
  }
  if (snapshot === null) return { updatedAt: null, conflicts: [] };
  if (
    base.updatedAt !== null &&
    request.dropUpToSeq === undefined &&
    request.force !== true &&
    compareTokens(snapshot.updatedAt, base.updatedAt) <= 0
  ) {
    return { updatedAt: null, conflicts: [] }; // not newer than what we have
  }
  let conflicts: SyncConflict[] = [];
  const doc = snapshot.doc;
  await store.rebase({ doc, updatedAt: snapshot.updatedAt, dropUpToSeq: request.dropUpToSeq }, (entries) => {
    const result = rebaseOutbox(doc, entries, ctx.handlers, base.doc);
    conflicts = result.conflicts;
    return result.entries;
  });
  return { updatedAt: snapshot.updatedAt, conflicts };
}
