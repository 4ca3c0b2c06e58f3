/**
 * The sync engine: push (outbox → `userdb_patch`, exactly once), pull (Realtime pokes,
 * `userdb_pull`), rebase of pending edits, leader election, status and conflicts.
 */
export { type BackoffOptions, backoffDelay } from './backoff.js';
export { SyncEngine, type SyncEngineDeps, type SyncOptions } from './engine.js';
export {
  browserFocusSignal,
  browserOnlineSignal,
  type Clock,
  type LockManagerLike,
  ManualSignal,
  type Signal,
  systemClock,
} from './env.js';
export { InProcessLocks, LeaderElection, lockScopeFor, webLocks } from './leader.js';
export type { RewrittenEntry, SyncBase, SyncOutboxEntry, SyncStore } from './ports.js';
export {
  type ConflictHandler,
  type DeleteConflict,
  type FieldConflict,
  rebaseOutbox,
  type SyncConflict,
} from './rebase.js';
export { type StartSyncOptions, type SyncClient, sessionUserId, startSync } from './start.js';
export type { SyncPhase, SyncStatus } from './state.js';
export { syncStoreOf } from './store-adapter.js';
