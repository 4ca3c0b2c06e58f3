/**
 * The sync engine's state: one plain object changed only through {@link reduce}. `status$` is
 * derived from it by {@link toStatus}, never kept as a second copy.
 */
import type { UserDbError } from '../errors.js';

/** What the engine is doing, as shown on `status$`. */
export type SyncPhase = 'idle' | 'pushing' | 'pulling' | 'backoff' | 'offline' | 'error';

/**
 * The public sync status.
 *
 * - `state`: `pushing`/`pulling` while a request is in flight; `error` while a permanent error
 *   stops pushing (see `lastError`); `offline` while the network is down; `backoff` while waiting
 *   to retry; else `idle`.
 * - `online`: the platform says so and the last request did not fail for lack of network.
 * - `leader`: this instance runs sync for its user (one per browser); followers only write.
 * - `pendingCount`: local writes not yet acknowledged by the server (not counting the creation of
 *   the declared tables that opening a database writes on a device that does not have them yet).
 * - `lastSyncedAt`: epoch milliseconds of the last successful push or pull.
 * - `lastError`: the error of the last failed request, cleared by the next success.
 * - `retryAt`: when the next retry is due, during `backoff`/`offline`.
 */
export interface SyncStatus {
  state: SyncPhase;
  online: boolean;
  leader: boolean;
  pendingCount: number;
  lastSyncedAt: number | null;
  lastError: UserDbError | null;
  retryAt: number | null;
}

/** The engine's internal state. */
export interface SyncState {
  activity: 'idle' | 'pushing' | 'pulling';
  leader: boolean;
  /** What the platform (navigator.onLine) says. */
  platformOnline: boolean;
  /** False after a request failed with a network error, until one succeeds. */
  reachable: boolean;
  pendingCount: number;
  lastSyncedAt: number | null;
  lastError: UserDbError | null;
  /** Consecutive transient failures (drives the backoff). */
  failures: number;
  /** Consecutive push conflicts (a few retry at once, then backoff). */
  conflicts: number;
  retryAt: number | null;
  /** A permanent error that stops pushing until fixed or `flush()` is called again. */
  pushBlocked: UserDbError | null;
  /** The server document is invalid: no rebase is possible until a pull returns a valid one. */
  pullBlocked: UserDbError | null;
  closed: boolean;
}

/** Everything that changes {@link SyncState}. */
export type SyncAction =
  | { type: 'leader'; leader: boolean }
  | { type: 'platform_online'; online: boolean }
  | { type: 'pending'; count: number }
  | { type: 'start'; activity: 'pushing' | 'pulling' }
  | { type: 'done' }
  | { type: 'pushed'; at: number }
  | { type: 'pulled'; at: number }
  | { type: 'conflict' }
  | { type: 'transient_failure'; error: UserDbError; network: boolean; retryAt: number }
  | { type: 'push_blocked'; error: UserDbError }
  | { type: 'pull_blocked'; error: UserDbError }
  | { type: 'retry_due' }
  | { type: 'unblock_push' }
  | { type: 'closed' };

/**
 * The state of a fresh engine.
 *
 * @example
 * ```ts
 * let state = initialSyncState(true);
 * state = reduce(state, { type: 'start', activity: 'pulling' });
 * ```
 */
export function initialSyncState(platformOnline: boolean): SyncState {
  return {
    activity: 'idle',
    leader: false,
    platformOnline,
    reachable: true,
    pendingCount: 0,
    lastSyncedAt: null,
    lastError: null,
    failures: 0,
    conflicts: 0,
    retryAt: null,
    pushBlocked: null,
    pullBlocked: null,
    closed: false,
  };
}

/**
 * The one reducer of sync state. Pure.
 *
 * @example
 * ```ts
 * const next = reduce(state, { type: 'pushed', at: Date.now() });
 * ```
 */
export function reduce(state: SyncState, action: SyncAction): SyncState {
  if (state.closed) return state;
  switch (action.type) {
    case 'leader':
      return { ...state, leader: action.leader, activity: action.leader ? state.activity : 'idle' };
    case 'platform_online':
      // coming online ends a wait: the engine retries at once
      return action.online
        ? { ...state, platformOnline: true, reachable: true, retryAt: null }
        : { ...state, platformOnline: false };
    case 'pending':
      return { ...state, pendingCount: action.count };
    case 'start':
      return { ...state, activity: action.activity, retryAt: null };
    case 'done':
      return { ...state, activity: 'idle' };
    case 'pushed':
      return {
        ...state,
        activity: 'idle',
        reachable: true,
        failures: 0,
        conflicts: 0,
        lastSyncedAt: action.at,
        lastError: state.pullBlocked,
      };
    case 'pulled':
      return {
        ...state,
        activity: 'idle',
        reachable: true,
        failures: 0,
        lastSyncedAt: action.at,
        pullBlocked: null,
        lastError: state.pushBlocked,
      };
    case 'conflict':
      return { ...state, activity: 'idle', reachable: true, conflicts: state.conflicts + 1 };
    case 'transient_failure':
      return {
        ...state,
        activity: 'idle',
        reachable: action.network ? false : state.reachable,
        failures: state.failures + 1,
        lastError: action.error,
        retryAt: action.retryAt,
      };
    case 'push_blocked':
      return {
        ...state,
        activity: 'idle',
        reachable: true,
        pushBlocked: action.error,
        lastError: action.error,
      };
    case 'pull_blocked':
      return {
        ...state,
        activity: 'idle',
        reachable: true,
        pullBlocked: action.error,
        lastError: action.error,
      };
    case 'retry_due':
      return { ...state, retryAt: null };
    case 'unblock_push':
      return {
        ...state,
        pushBlocked: null,
        failures: 0,
        conflicts: 0,
        retryAt: null,
        lastError: state.pullBlocked ?? (state.pushBlocked === null ? state.lastError : null),
      };
    case 'closed':
      return { ...state, activity: 'idle', leader: false, retryAt: null, closed: true };
  }
}

/**
 * Derives the public status from the state.
 *
 * @example
 * ```ts
 * const status$ = state$.pipe(map(toStatus), distinctUntilChanged(sameStatus));
 * ```
 */
export function toStatus(state: SyncState): SyncStatus {
  const online = state.platformOnline && state.reachable;
  let phase: SyncPhase;
  if (state.activity !== 'idle') phase = state.activity;
  else if (state.pushBlocked !== null || state.pullBlocked !== null) phase = 'error';
  else if (!online) phase = 'offline';
  else if (state.retryAt !== null) phase = 'backoff';
  else phase = 'idle';
  return {
    state: phase,
    online,
    leader: state.leader,
    pendingCount: state.pendingCount,
    lastSyncedAt: state.lastSyncedAt,
    lastError: state.lastError,
    retryAt: state.retryAt,
  };
}

/**
 * Structural equality of two statuses (errors by identity), to keep subscribers quiet.
 *
 * @example
 * ```ts
 * sameStatus(toStatus(a), toStatus(a)); // true
 * ```
 */
export function sameStatus(a: SyncStatus, b: SyncStatus): boolean {
  return (
    a.state === b.state &&
    a.online === b.online &&
    a.leader === b.leader &&
    a.pendingCount === b.pendingCount &&
    a.lastSyncedAt === b.lastSyncedAt &&
    a.lastError === b.lastError &&
    a.retryAt === b.retryAt
  );
}
