/**
 * The server as the sync engine sees it: three RPCs, one Realtime subscription and the session.
 * `SupabaseRemote` implements it over supabase-js; tests may implement it in memory.
 */
import type { CompactDoc, PatchOp } from '../doc/types.js';
import type { UserDbError } from '../errors.js';

/** The server's document and its `updated_at` token (canonical form, see `normalizeToken`). */
export interface RemoteSnapshot {
  doc: CompactDoc;
  updatedAt: string;
}

/** One `userdb_patch` call: index-based ops against the document at `expectedUpdatedAt`. */
export interface PatchBatch {
  ops: PatchOp[];
  expectedUpdatedAt: string | null;
  clientId: string;
  batchSeq: number;
}

/**
 * The answer to a patch. `applied: false` means the server had already applied this
 * `(clientId, batchSeq)` earlier (a retry after a lost response); `updatedAt` is then the server's
 * current token.
 */
export interface PatchResult {
  applied: boolean;
  updatedAt: string;
}

/**
 * One committed change of the user's row, as the server's change log records it: the tokens
 * before and after, the index-based ops it applied (`null` for a change whose ops are unknown or
 * too large to broadcast), and who made it (`clientId`/`batchSeq` of a `userdb_patch`, else `null`).
 */
export interface RemoteDelta {
  before: string;
  after: string;
  ops: PatchOp[] | null;
  clientId: string | null;
  batchSeq: number | null;
}

/**
 * The answer of `userdb_pull(since, delta => true)`: the whole document (`kind: 'doc'`), or the chain
 * of changes after `since` (`kind: 'changes'`, in commit order, every `ops` set, the first `before`
 * equal to `since`, each `before` the previous `after`, the last `after` equal to `updatedAt`).
 */
export type RemotePull =
  | { kind: 'doc'; snapshot: RemoteSnapshot }
  | { kind: 'changes'; changes: RemoteDelta[]; updatedAt: string };

/**
 * A Realtime poke about the user's row. `updatedAt` is the event's token when it had a valid one;
 * `snapshot` is set only when the event carried the whole, valid document (`postgres_changes`);
 * `delta` when it was a Broadcast of the change log (its `ops` may be `null`: then pull).
 */
export interface RemoteChange {
  updatedAt: string | null;
  snapshot: RemoteSnapshot | null;
  delta?: RemoteDelta | undefined;
}

/** Callbacks of {@link Remote.subscribe}. */
export interface RemoteSubscriptionHandlers {
  /** The channel is (re)subscribed: events sent while it was down are lost, so pull now. */
  onSubscribed(): void;
  /** A change of the user's row. */
  onChange(change: RemoteChange): void;
  /** The channel failed or closed; realtime-js rejoins on its own, `onSubscribed` follows. */
  onError(error: UserDbError): void;
}

/** What happened to the session (see {@link Remote.onAuthChange}). */
export interface RemoteAuthEvent {
  type: 'signed_in' | 'token_refreshed' | 'signed_out';
  userId: string | null;
}

/**
 * The server contract of the sync engine. Every method validates what it receives and fails only
 * with typed errors: `NetworkError`, `ServerError`, `AuthError`, `ForbiddenError`, `ConflictError`,
 * `PayloadTooLargeError`, `BadPatchError`, `InvalidRemoteDocumentError`.
 *
 * @example
 * ```ts
 * const remote: Remote = new SupabaseRemote(supabase, { userId });
 * const { doc, updatedAt } = await remote.init();
 * ```
 */
export interface Remote {
  /** The id of the user the session belongs to, or `null` when signed out. */
  currentUserId(): Promise<string | null>;
  /** `userdb_init()`: creates the row when missing, returns the document. */
  init(): Promise<RemoteSnapshot>;
  /** `userdb_pull(since)`: the document when it changed after `since` (or always when `null`), else `null`. */
  pull(since: string | null): Promise<RemoteSnapshot | null>;
  /**
   * `userdb_pull(since, delta => true)`: the changes after `since` when the server's log covers them
   * and they are smaller than the document, else the document; `null` when nothing is newer. On a
   * server without the change log it answers the document (the one-argument call).
   */
  pull(since: string | null, options: { delta: true }): Promise<RemotePull | null>;
  /** `userdb_patch(...)`. */
  patch(batch: PatchBatch): Promise<PatchResult>;
  /** Subscribes to changes of the user's row; returns the unsubscribe function. */
  subscribe(userId: string, handlers: RemoteSubscriptionHandlers): () => void;
  /** Follows sign-in, token refresh and sign-out; returns the unsubscribe function. */
  onAuthChange(listener: (event: RemoteAuthEvent) => void): () => void;
}
