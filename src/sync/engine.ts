/**
 * The sync engine of one user's local database: leader election, the push/pull loop, retries, and
 * the observable status. One request is in flight at a time; every trigger (a local write, a
 * Realtime poke, coming online, focus, the safety poll, a timer) only sets a flag and wakes the
 * loop, so bursts coalesce (Replicache's poke model).
 *
 * Loop priority: a batch whose answer was lost is resolved first (resent with the same
 * `batch_seq`); then a pending pull; then pushing the outbox.
 */
import { BehaviorSubject, distinctUntilChanged, map, type Observable, Subject } from 'rxjs';
import { escapePointer, type Json, jsonEqual, type PatchOp } from '../doc/index.js';
import { keyOfArray, schemaInfo } from '../doc/schema-info.js';
import {
  AuthError,
  ConflictError,
  DatabaseClosedError,
  ForbiddenError,
  InvalidRemoteDocumentError,
  NetworkError,
  ServerError,
  type UserDbError,
} from '../errors.js';
import type { PatchBatch, PatchResult, Remote, RemoteChange, RemoteSnapshot } from '../remote/index.js';
import { compareTokens, sameToken } from '../remote/index.js';
import { type BackoffOptions, backoffDelay } from './backoff.js';
import { asUserDbError, isTransient } from './classify.js';
import { cellId } from './delta.js';
import {
  browserFocusSignal,
  browserOnlineSignal,
  type Clock,
  type LockManagerLike,
  type Signal,
  systemClock,
  type TimerHandle,
} from './env.js';
import { InProcessLocks, LeaderElection, webLocks } from './leader.js';
import type { SyncStore } from './ports.js';
import { type PullRequest, pullOnce } from './puller.js';
import { pushOnce } from './pusher.js';
import type { ConflictHandler, SyncConflict } from './rebase.js';
import {
  initialSyncState,
  reduce,
  type SyncAction,
  type SyncState,
  type SyncStatus,
  sameStatus,
  toStatus,
} from './state.js';

/** Tuning and environment of the sync engine. Every field is optional. */
export interface SyncOptions {
  /** Wait this long after a local write before pushing, to batch bursts (default 50 ms). */
  pushDebounceMs?: number | undefined;
  /** Byte cap of one push (UTF-8 JSON of the keyed ops; default 1 MiB). */
  maxBatchBytes?: number | undefined;
  /** Safety-net pull interval; `0` disables it (default 60 000 ms). */
  pollIntervalMs?: number | undefined;
  /** Retry delays (default 1 s doubling up to 60 s, jittered). */
  backoff?: BackoffOptions | undefined;
  /** Conflicts in a row that are retried at once before backing off (default 3). */
  maxImmediateConflicts?: number | undefined;
  /** Per-table decision for the same field edited on both sides (see {@link ConflictHandler}). */
  onConflict?: Readonly<Record<string, ConflictHandler>> | undefined;
  /**
   * Idle time after which the leader folds the log of acknowledged changes into the stored base, when
   * that log is past its size threshold (default 2000 ms; negative disables compaction).
   */
  compactAfterMs?: number | undefined;
  /**
   * Sync by delta (default true): pull the changes after the base, and receive changes by Broadcast
   * on the private topic `userdb:<user id>`. `false`: whole documents and `postgres_changes`, as
   * with a server without the delta migration (which is detected by itself).
   */
  delta?: boolean | undefined;
  /** Subscribe to Realtime pokes (default true). */
  realtime?: boolean | undefined;
  /** Clock and timers (default: the system's). */
  clock?: Clock | undefined;
  /** Random source of the backoff jitter (default `Math.random`). */
  random?: (() => number) | undefined;
  /** Connectivity (default `navigator.onLine` and window events). */
  online?: Signal | undefined;
  /** Focus/visibility (default window `focus` and `visibilitychange`). */
  focus?: Signal | undefined;
  /** The leader lock (default Web Locks, else an in-process lock). */
  locks?: LockManagerLike | undefined;
}

/** What the engine runs on. */
export interface SyncEngineDeps {
  store: SyncStore;
  remote: Remote;
  userId: string;
  options?: SyncOptions | undefined;
}

interface Waiter {
  resolve: () => void;
  reject: (e: UserDbError) => void;
}

interface FlushWaiter extends Waiter {
  target: number;
}

/** A table (`/tables/x`) or a new field of one (`/tables/x/schema/fields/-`). */
const TABLE_SETUP_PATH = /^\/tables\/[^/]+(\/schema\/fields\/-)?$/;

function closedError(): UserDbError {
  return new DatabaseClosedError('the database is closed');
}

function newerSnapshot(a: RemoteSnapshot, b: RemoteSnapshot): RemoteSnapshot {
  return compareTokens(a.updatedAt, b.updatedAt) >= 0 ? a : b;
}

/**
 * Syncs one user's local store with the server. Created by `createUserDb`; exposed through
 * `db.status$`, `db.conflicts$`, `db.flush()`, `db.pull()` and `db.close()`.
 *
 * @example
 * ```ts
 * const engine = new SyncEngine({ store, remote: new SupabaseRemote(supabase, { userId }), userId });
 * engine.status$.subscribe((s) => console.log(s.state, s.pendingCount));
 * await engine.flush();
 * await engine.close();
 * ```
 */
export class SyncEngine {
  readonly #store: SyncStore;
  readonly #remote: Remote;
  readonly #userId: string;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #online: Signal;
  readonly #focus: Signal;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  readonly #backoff: BackoffOptions;
  readonly #maxConflicts: number;
  readonly #handlers: Readonly<Record<string, ConflictHandler>>;
  readonly #realtime: boolean;
  #maxBytes: number;
  /** The configured byte cap: restored once the entry at fault of a refused batch is held. */
  readonly #batchBytes: number;

  readonly #state: BehaviorSubject<SyncState>;
  readonly #conflicts = new Subject<SyncConflict>();
  readonly #election: LeaderElection;
  readonly #subscriptions: (() => void)[] = [];
  #leading: (() => void)[] = [];

  #running: Promise<void> | null = null;
  #leaderInit = false;
  #uncertain = false;
  #wantPush = false;
  #wantPull: PullRequest | null = null;
  /** Obligations of a pull that failed permanently, merged into the next requested pull. */
  #pullCarry: PullRequest | null = null;
  #baseToken: string | null = null;
  #pullWaiters: Waiter[] = [];
  #flushWaiters: FlushWaiter[] = [];
  #debounceTimer: TimerHandle | null = null;
  #retryTimer: TimerHandle | null = null;
  #pollTimer: TimerHandle | null = null;
  #compactTimer: TimerHandle | null = null;
  /**
   * Cells where a rebase kept our edit over a concurrent remote value (`remote`): the next push
   * declares that value with a `test` op, so the device that wrote it learns it was overridden.
   */
  readonly #overrides = new Map<string, { table: string; key: string; field: string; remote: Json }>();
  /** {@link Remote} for the pusher: `patch` goes through {@link SyncEngine.#patch}. */
  readonly #pushRemote: Remote;
  readonly #compactMs: number;
  #pendingRefresh: 'idle' | 'running' | 'again' = 'idle';
  /** Whether the outbox entry `seq` (the first one when last read) only sets up tables. */
  #firstEntry: { seq: number; setup: boolean } | null = null;

  /** The sync status, derived from the engine's state; replays the current value. */
  readonly status$: Observable<SyncStatus>;
  /** Every local edit dropped or overridden while rebasing on a newer server document. */
  readonly conflicts$: Observable<SyncConflict>;

  constructor(deps: SyncEngineDeps) {
    const o = deps.options ?? {};
    this.#store = deps.store;
    this.#remote = deps.remote;
    this.#userId = deps.userId;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? Math.random;
    this.#online = o.online ?? browserOnlineSignal();
    this.#focus = o.focus ?? browserFocusSignal();
    this.#debounceMs = o.pushDebounceMs ?? 50;
    this.#pollMs = o.pollIntervalMs ?? 60_000;
    this.#backoff = o.backoff ?? {};
    this.#maxConflicts = o.maxImmediateConflicts ?? 3;
    this.#handlers = o.onConflict ?? {};
    this.#realtime = o.realtime ?? true;
    this.#maxBytes = o.maxBatchBytes ?? 1024 * 1024;
    this.#compactMs = o.compactAfterMs ?? 2000;
    const remote = deps.remote;
    this.#pushRemote = {
      currentUserId: () => remote.currentUserId(),
      init: () => remote.init(),
      pull: remote.pull.bind(remote),
      patch: (batch) => this.#patch(batch),
      subscribe: (userId, handlers) => remote.subscribe(userId, handlers),
      onAuthChange: (listener) => remote.onAuthChange(listener),
    };
    this.#batchBytes = this.#maxBytes;
    this.#state = new BehaviorSubject(initialSyncState(this.#online.get()));
    this.status$ = this.#state.pipe(map(toStatus), distinctUntilChanged(sameStatus));
    this.conflicts$ = this.#conflicts.asObservable();

    this.#subscriptions.push(
      this.#store.onChange((change) => {
        if (change.outbox) this.#onOutboxChanged();
      }),
    );
    this.#subscriptions.push(
      this.#online.subscribe((online) => {
        this.#dispatch({ type: 'platform_online', online });
        if (online && this.#state.value.leader) {
          // back online: retry now, and pull what was missed
          this.#clearTimer('retry');
          this.#requestPull({});
          this.#kick();
        }
      }),
    );
    this.#refreshPending();
    const locks = o.locks ?? webLocks() ?? InProcessLocks.shared;
    this.#election = new LeaderElection(locks, `userdb:leader:${deps.userId}`);
    const sub = this.#election.isLeader$.subscribe((leader) => {
      if (leader) this.#startLeading();
    });
    this.#subscriptions.push(() => sub.unsubscribe());
  }

  /** The current status. */
  get status(): SyncStatus {
    return toStatus(this.#state.value);
  }

  /**
   * Pushes every local write made before the call. Resolves once the server has acknowledged them;
   * keeps waiting through network trouble (sync retries); rejects when pushing stops on a
   * permanent error (which stays on `status$`), or when the engine closes. Calling it also retries
   * after such a permanent error.
   *
   * @example
   * ```ts
   * await db.flush();
   * ```
   */
  async flush(): Promise<void> {
    if (this.#state.value.closed) throw closedError();
    if (this.#state.value.pushBlocked !== null) this.#dispatch({ type: 'unblock_push' });
    const target = await this.#store.lastSeq();
    if (target === 0) return;
    const done = new Promise<void>((resolve, reject) => {
      this.#flushWaiters.push({ target, resolve, reject });
    });
    this.#wantPush = true;
    this.#clearTimer('debounce');
    this.#retryNow();
    void this.#checkFlushWaiters();
    return done;
  }

  /**
   * Pulls the server document now (on the leader) and resolves when it is stored; rejects with
   * the pull's error. On a follower instance it resolves at once: the leader keeps the shared base
   * up to date.
   *
   * @example
   * ```ts
   * await db.pull();
   * ```
   */
  async pull(): Promise<void> {
    if (this.#state.value.closed) throw closedError();
    if (!this.#state.value.leader) return;
    if (!this.#online.get()) throw new NetworkError('offline: cannot pull now');
    const done = new Promise<void>((resolve, reject) => {
      this.#pullWaiters.push({ resolve, reject });
    });
    this.#requestPull({});
    this.#retryNow();
    return done;
  }

  /**
   * Stops sync: timers, the Realtime channel and the leader lock (another instance takes over).
   * Waits for a request in flight to be stored. Idempotent.
   *
   * @example
   * ```ts
   * await db.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#state.value.closed) {
      await this.#running;
      return;
    }
    this.#stopLeading();
    for (const off of this.#subscriptions.splice(0)) off();
    this.#clearTimer('debounce');
    this.#election.close();
    this.#dispatch({ type: 'closed' });
    const err = closedError();
    for (const w of this.#pullWaiters.splice(0)) w.reject(err);
    for (const w of this.#flushWaiters.splice(0)) w.reject(err);
    try {
      await this.#running;
    } catch {
      // the loop reports its own errors
    }
    this.#state.complete();
    this.#conflicts.complete();
  }

  // leadership ---------------------------------------------------------------------------------

  #startLeading(): void {
    if (this.#state.value.closed) return;
    this.#dispatch({ type: 'leader', leader: true });
    this.#leaderInit = true;
    this.#wantPush = true;
    this.#requestPull({});
    this.#leading.push(
      this.#focus.subscribe((focused) => {
        if (focused) {
          this.#requestPull({});
          this.#kick();
        }
      }),
      this.#remote.onAuthChange((event) => {
        if (event.type === 'signed_out') return;
        const { lastError, pushBlocked } = this.#state.value;
        if (pushBlocked instanceof ForbiddenError) this.#dispatch({ type: 'unblock_push' });
        if (lastError instanceof AuthError || lastError instanceof ForbiddenError) this.#retryNow();
      }),
    );
    if (this.#realtime) {
      this.#leading.push(
        this.#remote.subscribe(this.#userId, {
          onSubscribed: () => {
            // events sent while the channel was down are not replayed: pull, and retry now
            this.#requestPull({});
            this.#retryNow();
          },
          onChange: (change) => this.#onRemoteChange(change),
          onError: () => undefined, // realtime-js rejoins by itself; onSubscribed follows
        }),
      );
    }
    this.#schedulePoll();
    this.#kick();
  }

  #stopLeading(): void {
    for (const off of this.#leading.splice(0)) off();
    if (this.#compactTimer !== null) this.#clock.clearTimeout(this.#compactTimer);
    this.#compactTimer = null;
    this.#clearTimer('retry');
    this.#clearTimer('poll');
  }

  // triggers ---------------------------------------------------------------------------------

  #onRemoteChange(change: RemoteChange): void {
    if (change.updatedAt !== null && sameToken(change.updatedAt, this.#baseToken)) return; // our own echo
    if (change.delta !== undefined) {
      const known = this.#baseToken;
      if (known !== null && compareTokens(change.delta.after, known) <= 0) return; // old or duplicate
      this.#requestPull({ deltas: [change.delta] });
    } else {
      this.#requestPull(change.snapshot === null ? {} : { snapshot: change.snapshot });
    }
    this.#kick();
  }

  #onOutboxChanged(): void {
    this.#refreshPending();
    void this.#checkFlushWaiters();
    if (!this.#state.value.leader || this.#debounceTimer !== null) return;
    this.#debounceTimer = this.#clock.setTimeout(() => {
      this.#debounceTimer = null;
      this.#wantPush = true;
      this.#kick();
    }, this.#debounceMs);
  }

  #requestPull(request: PullRequest): void {
    const prev = this.#wantPull ?? this.#pullCarry;
    this.#pullCarry = null;
    if (prev === null) {
      this.#wantPull = { ...request };
      return;
    }
    // coalesce into the one queued pull: every obligation is kept; a Realtime record is used only
    // when every poke carried one (a bare poke asks for the server's latest)
    const drop = Math.max(prev.dropUpToSeq ?? 0, request.dropUpToSeq ?? 0);
    this.#wantPull = {
      force: prev.force === true || request.force === true ? true : undefined,
      snapshot:
        prev.snapshot !== undefined && request.snapshot !== undefined
          ? newerSnapshot(prev.snapshot, request.snapshot)
          : undefined,
      // Broadcast changes are applied without a request only when every poke was one
      deltas:
        prev.deltas !== undefined && request.deltas !== undefined
          ? [...prev.deltas, ...request.deltas]
          : undefined,
      init: prev.init === true || request.init === true ? true : undefined,
      dropUpToSeq: drop > 0 ? drop : undefined,
    };
  }

  #retryNow(): void {
    this.#clearTimer('retry');
    if (this.#state.value.retryAt !== null) this.#dispatch({ type: 'retry_due' });
    this.#kick();
  }

  #schedulePoll(): void {
    if (this.#pollMs <= 0) return;
    this.#pollTimer = this.#clock.setTimeout(() => {
      this.#pollTimer = null;
      this.#requestPull({});
      this.#kick();
      this.#schedulePoll();
    }, this.#pollMs);
  }

  #clearTimer(which: 'debounce' | 'retry' | 'poll'): void {
    const handle =
      which === 'debounce' ? this.#debounceTimer : which === 'retry' ? this.#retryTimer : this.#pollTimer;
    if (handle !== null) this.#clock.clearTimeout(handle);
    if (which === 'debounce') this.#debounceTimer = null;
    else if (which === 'retry') this.#retryTimer = null;
    else this.#pollTimer = null;
  }

  // the loop ---------------------------------------------------------------------------------

  #kick(): void {
    if (this.#running !== null) return;
    const s = this.#state.value;
    if (s.closed || !s.leader) return;
    this.#running = this.#drain()
      .catch((e: unknown) => this.#fail(asUserDbError(e), 'pull'))
      .finally(() => {
        this.#running = null;
        if (this.#hasWork()) this.#kick();
      });
  }

  #hasWork(): boolean {
    return this.#nextTask() !== null;
  }

  #blocked(): boolean {
    const s = this.#state.value;
    return s.pushBlocked !== null || s.pullBlocked !== null;
  }

  /** What the loop does next, by priority, or `null` when there is nothing it may do now. */
  #nextTask(): (() => Promise<void>) | null {
    const s = this.#state.value;
    if (s.closed || !s.leader || s.retryAt !== null || !s.platformOnline) return null;
    if (this.#leaderInit) return () => this.#initLeader();
    if (this.#uncertain && !this.#blocked() && this.#baseToken !== null) return () => this.#doPush();
    if (this.#wantPull !== null) return () => this.#doPull();
    if ((this.#wantPush || this.#uncertain) && !this.#blocked()) return () => this.#doPush();
    return null;
  }

  async #drain(): Promise<void> {
    for (let task = this.#nextTask(); task !== null; task = this.#nextTask()) await task();
    this.#scheduleCompaction();
  }

  /**
   * Once sync is idle, folds the store's log into its base when the log is past its threshold
   * (`compactAfterMs` later; any new work postpones it). Never on the write path.
   */
  #scheduleCompaction(): void {
    if (this.#store.compact === undefined || this.#compactMs < 0) return;
    if (this.#compactTimer !== null) this.#clock.clearTimeout(this.#compactTimer);
    this.#compactTimer = this.#clock.setTimeout(() => {
      this.#compactTimer = null;
      const s = this.#state.value;
      if (s.closed || !s.leader || this.#running !== null || this.#hasWork()) return;
      this.#running = (async () => {
        try {
          await this.#store.compact?.({});
        } catch {
          // the log stays; the next idle period tries again
        }
      })().finally(() => {
        this.#running = null;
        if (this.#hasWork()) this.#kick();
      });
    }, this.#compactMs);
  }

  async #initLeader(): Promise<void> {
    const base = await this.#store.readBase();
    this.#baseToken = base.updatedAt;
    const [first, next] = await Promise.all([this.#store.firstSeq(), this.#store.getNextBatchSeq()]);
    // entries below nextBatchSeq were sent by a previous leader that never heard back
    this.#uncertain = first !== 0 && first < next;
    if (base.updatedAt === null) this.#requestPull({ init: true });
    this.#leaderInit = false;
  }

  async #doPush(): Promise<void> {
    this.#dispatch({ type: 'start', activity: 'pushing' });
    try {
      const outcome = await pushOnce({
        store: this.#store,
        remote: this.#pushRemote,
        maxBytes: this.#maxBytes,
      });
      this.#uncertain = false;
      switch (outcome.kind) {
        case 'empty':
          this.#wantPush = false;
          this.#dispatch({ type: 'done' });
          break;
        case 'need_base':
          this.#requestPull({ init: true });
          this.#dispatch({ type: 'done' });
          break;
        case 'pushed':
          this.#baseToken = outcome.updatedAt;
          this.#dispatch({ type: 'pushed', at: this.#clock.now() });
          break;
        case 'already_applied':
          this.#requestPull({ dropUpToSeq: outcome.upToSeq });
          this.#dispatch({ type: 'done' });
          break;
        case 'shrink':
          this.#maxBytes = outcome.maxBytes;
          this.#dispatch({ type: 'done' });
          break;
        case 'held': {
          // listed by db.heldEntries(); the rest of the outbox keeps syncing, but a flush() that
          // waited for a held entry learns that it did not reach the server
          this.#dispatch({ type: 'done' });
          this.#maxBytes = this.#batchBytes; // the halving found the entry at fault
          const first = Math.min(...outcome.seqs);
          const failed = this.#flushWaiters.filter((w) => w.target >= first);
          this.#flushWaiters = this.#flushWaiters.filter((w) => w.target < first);
          for (const w of failed) w.reject(outcome.error);
          await this.#store.holdEntries(outcome.hold);
          break;
        }
      }
      void this.#checkFlushWaiters();
    } catch (e) {
      this.#fail(asUserDbError(e), 'push');
    }
  }

  async #doPull(): Promise<void> {
    const request = this.#wantPull ?? {};
    this.#wantPull = null;
    const known = this.#baseToken;
    if (
      request.snapshot !== undefined &&
      request.init !== true &&
      request.force !== true &&
      request.dropUpToSeq === undefined &&
      known !== null &&
      compareTokens(request.snapshot.updatedAt, known) <= 0
    ) {
      // a Realtime record we already have (typically the echo of our own push)
      for (const w of this.#pullWaiters.splice(0)) w.resolve();
      return;
    }
    if (
      request.deltas !== undefined &&
      request.init !== true &&
      request.force !== true &&
      request.dropUpToSeq === undefined &&
      known !== null &&
      request.deltas.every((d) => compareTokens(d.after, known) <= 0)
    ) {
      // Broadcasts we already have (the echo of our own push, received before its answer)
      for (const w of this.#pullWaiters.splice(0)) w.resolve();
      return;
    }
    const waiters = this.#pullWaiters.splice(0);
    this.#dispatch({ type: 'start', activity: 'pulling' });
    try {
      const outcome = await pullOnce(
        { store: this.#store, remote: this.#remote, handlers: this.#handlers },
        request,
      );
      if (outcome.updatedAt !== null) {
        this.#baseToken = outcome.updatedAt;
        // the base moved: a push stopped by a permanent error may succeed now
        if (this.#state.value.pushBlocked !== null) this.#dispatch({ type: 'unblock_push' });
        this.#wantPush = true;
      }
      this.#dispatch({ type: 'pulled', at: this.#clock.now() });
      for (const c of outcome.conflicts) {
        if (
          c.kind === 'field_changed' &&
          c.resolution !== 'dropped' &&
          c.key !== undefined &&
          c.field !== undefined
        ) {
          this.#overrides.set(cellId(c.table, c.key, c.field), {
            table: c.table,
            key: c.key,
            field: c.field,
            remote: c.remote ?? null,
          });
        }
        this.#conflicts.next(c);
      }
      for (const t of outcome.overridden) {
        // a value we wrote (remembered by the store since its push, across reloads), overwritten
        // by a device whose rebase kept its concurrent edit; the store forgot it with the change
        this.#conflicts.next({
          kind: 'overridden',
          table: t.table,
          key: t.key,
          field: t.field,
          local: t.expected,
          remote: t.written,
          resolution: 'dropped',
        });
      }
      for (const w of waiters) w.resolve();
      void this.#checkFlushWaiters();
    } catch (e) {
      const err = asUserDbError(e);
      // keep the obligations of the failed pull (not its snapshot: it may be stale by then); after
      // a transient failure the retry comes after the backoff, else with the next trigger
      const carry = { init: request.init, dropUpToSeq: request.dropUpToSeq, force: request.force };
      if (isTransient(err) || err instanceof ConflictError) this.#requestPull(carry);
      else this.#pullCarry = carry;
      for (const w of waiters) w.reject(err);
      this.#fail(err, 'pull');
    }
  }

  /**
   * `userdb_patch` with a `test` op first for each cell where a rebase kept our edit over a
   * concurrent value still in the base (the server checks it; the change log then tells the
   * device that wrote the value). The cells the batch wrote are remembered by the pusher's commit.
   */
  async #patch(batch: PatchBatch): Promise<PatchResult> {
    const base = await this.#store.readBase();
    const tests: PatchOp[] = [];
    const declared: string[] = [];
    if (this.#overrides.size > 0 && sameToken(base.updatedAt, batch.expectedUpdatedAt)) {
      for (const [id, o] of this.#overrides) {
        const table = Object.hasOwn(base.doc.tables, o.table) ? base.doc.tables[o.table] : undefined;
        const info = table === undefined ? undefined : schemaInfo(table.schema);
        const j = info?.index.get(o.field);
        const i =
          table === undefined || info === undefined
            ? -1
            : table.rows.findIndex((r) => keyOfArray(info, r) === o.key);
        if (
          table === undefined ||
          j === undefined ||
          i < 0 ||
          !jsonEqual(table.rows[i]?.[j] ?? null, o.remote)
        ) {
          this.#overrides.delete(id); // the value is no longer there: nothing to declare
          continue;
        }
        tests.push({ op: 'test', path: `/tables/${escapePointer(o.table)}/rows/${i}/${j}`, value: o.remote });
        declared.push(id);
      }
    }
    const result = await this.#remote.patch(
      tests.length === 0 ? batch : { ...batch, ops: [...tests, ...batch.ops] },
    );
    for (const id of declared) this.#overrides.delete(id);
    return result;
  }

  #fail(err: UserDbError, during: 'push' | 'pull'): void {
    if (this.#state.value.closed) return;
    if (err instanceof ConflictError) {
      // the server did not apply the batch: pull, rebase and retry; back off after a few in a row
      this.#uncertain = false;
      const server = err.serverToken;
      const known = this.#baseToken;
      // a server token older than ours: the server went back in time (restored); adopt its document
      const regressed = server !== null && known !== null && compareTokens(server, known) < 0;
      this.#requestPull(regressed ? { force: true } : {});
      this.#dispatch({ type: 'conflict' });
      if (this.#state.value.conflicts > this.#maxConflicts) this.#scheduleRetry(err);
      return;
    }
    if (err instanceof ServerError && err.status === 404 && during === 'push') {
      this.#requestPull({ init: true }); // the row is gone (or never made): userdb_init, then push
    }
    if (isTransient(err)) {
      // the request may have reached the server: resolve the batch first when back
      if (during === 'push') this.#uncertain = true;
      this.#scheduleRetry(err);
      return;
    }
    this.#uncertain = false;
    if (err instanceof InvalidRemoteDocumentError) {
      this.#dispatch({ type: 'pull_blocked', error: err });
      return;
    }
    this.#wantPush = false;
    this.#dispatch({ type: 'push_blocked', error: err });
    for (const w of this.#flushWaiters.splice(0)) w.reject(err);
  }

  #scheduleRetry(err: UserDbError): void {
    const attempt = this.#state.value.failures + 1;
    const delay = backoffDelay(attempt, this.#random, this.#backoff);
    const retryAt = this.#clock.now() + delay;
    this.#dispatch({ type: 'transient_failure', error: err, network: err instanceof NetworkError, retryAt });
    this.#clearTimer('retry');
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = null;
      this.#dispatch({ type: 'retry_due' });
      this.#kick();
    }, delay);
  }

  // bookkeeping ------------------------------------------------------------------------------

  #dispatch(action: SyncAction): void {
    const next = reduce(this.#state.value, action);
    if (next !== this.#state.value) this.#state.next(next);
  }

  #refreshPending(): void {
    if (this.#pendingRefresh !== 'idle') {
      this.#pendingRefresh = 'again';
      return;
    }
    this.#pendingRefresh = 'running';
    void (async () => {
      for (;;) {
        try {
          const count = await this.#store.countOutbox();
          const setup = count > 0 && (await this.#firstIsTableSetup());
          this.#dispatch({ type: 'pending', count: setup ? count - 1 : count });
        } catch {
          // a closed or failing store: the next change refreshes again
        }
        if (this.#pendingRefresh === 'again') {
          this.#pendingRefresh = 'running';
          continue;
        }
        this.#pendingRefresh = 'idle';
        return;
      }
    })();
  }

  /**
   * Whether the first outbox entry only creates tables or adds fields: what opening a database
   * writes for its declared tables on a device that does not have them yet. That is no edit of the
   * user's, so `pendingCount` leaves it out (a signed-in new device shows nothing pending); it is
   * still pushed like any entry. One entry is read when the first seq changes.
   */
  async #firstIsTableSetup(): Promise<boolean> {
    const first = await this.#store.firstSeq();
    if (first === 0) return false;
    if (this.#firstEntry?.seq === first) return this.#firstEntry.setup;
    const [entry] = await this.#store.readOutbox({ upToSeq: first });
    const setup =
      entry !== undefined &&
      entry.seq === first &&
      entry.ops.length > 0 &&
      entry.ops.every((op) => op.op === 'add' && TABLE_SETUP_PATH.test(op.path));
    this.#firstEntry = { seq: first, setup };
    return setup;
  }

  async #checkFlushWaiters(): Promise<void> {
    if (this.#flushWaiters.length === 0) return;
    let first: number;
    try {
      first = await this.#store.firstSeq();
    } catch {
      return;
    }
    const done = this.#flushWaiters.filter((w) => first === 0 || first > w.target);
    if (done.length === 0) return;
    this.#flushWaiters = this.#flushWaiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }
}
