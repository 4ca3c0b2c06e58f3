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
 * A Realtime poke about the user's row. `updatedAt` is the event's token when it had a valid one;
 * `snapshot` is set only when the event carried the whole, valid document.
 */
export interface RemoteChange {
  updatedAt: string | null;
  snapshot: RemoteSnapshot | null;
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
  /** `userdb_patch(...)`. */
  patch(batch: PatchBatch): Promise<PatchResult>;
  /** Subscribes to changes of the user's row; returns the unsubscribe function. */
  subscribe(userId: string, handlers: RemoteSubscriptionHandlers): () => void;
  /** Follows sign-in, token refresh and sign-out; returns the unsubscribe function. */
  onAuthChange(listener: (event: RemoteAuthEvent) => void): () => void;
}
