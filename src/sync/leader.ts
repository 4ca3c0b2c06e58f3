/**
 * Leader election: exactly one sync engine per user and browser runs push, pull and Realtime.
 * Built on a named exclusive lock: Web Locks (`navigator.locks`) where present, so tabs of one
 * origin elect among themselves, an in-process lock otherwise. The holder keeps the lock until it
 * closes; the next waiter then takes over.
 */
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import type { LockManagerLike } from './env.js';

interface Waiter {
  grant: () => void;
}

/**
 * An exclusive named lock shared by everything in one JavaScript realm; the fallback where Web
 * Locks are missing (Node, old browsers). Waiters are served first come, first served.
 *
 * @example
 * ```ts
 * await InProcessLocks.shared.request('name', new AbortController().signal, async () => { ... });
 * ```
 */
export class InProcessLocks implements LockManagerLike {
  /** The lock manager of this realm. */
  static readonly shared = new InProcessLocks();

  readonly #held = new Set<string>();
  readonly #queues = new Map<string, Waiter[]>();

  async request(name: string, signal: AbortSignal, onAcquired: () => Promise<void>): Promise<void> {
    await this.#acquire(name, signal);
    try {
      await onAcquired();
    } finally {
      this.#release(name);
    }
  }

  #acquire(name: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortError());
    if (!this.#held.has(name)) {
      this.#held.add(name);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const queue = this.#queues.get(name) ?? [];
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const queue = this.#queues.get(name) ?? [];
      queue.push(waiter);
      this.#queues.set(name, queue);
    });
  }

  #release(name: string): void {
    const next = this.#queues.get(name)?.shift();
    if (next === undefined) {
      this.#held.delete(name);
      this.#queues.delete(name);
    } else {
      next.grant(); // the lock passes straight to the next waiter
    }
  }
}

function abortError(): Error {
  const e = new Error('The lock request was aborted');
  e.name = 'AbortError';
  return e;
}

const scopes = new WeakMap<object, InProcessLocks>();

/**
 * The in-process lock manager of one scope (typically an IndexedDB factory): instances that share
 * the scope share leadership; other scopes elect their own leaders.
 *
 * @example
 * ```ts
 * const locks = lockScopeFor(indexedDB);
 * ```
 */
export function lockScopeFor(scope: object | undefined): InProcessLocks {
  if (scope === undefined) return InProcessLocks.shared;
  let locks = scopes.get(scope);
  if (locks === undefined) {
    locks = new InProcessLocks();
    scopes.set(scope, locks);
  }
  return locks;
}

interface WebLocks {
  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}

/**
 * The Web Locks API of this browser wrapped as a {@link LockManagerLike}, or `undefined` where it
 * is missing.
 *
 * @example
 * ```ts
 * const locks = webLocks() ?? InProcessLocks.shared;
 * ```
 */
export function webLocks(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks;
  if (locks === undefined || typeof locks.request !== 'function') return undefined;
  return {
    request: async (name, signal, onAcquired) => {
      await locks.request(name, { signal }, onAcquired);
    },
  };
}

/**
 * Holds the leadership lock for one name while open. `isLeader$` turns true when this instance
 * becomes the leader and false when it closes.
 *
 * @example
 * ```ts
 * const election = new LeaderElection(InProcessLocks.shared, 'userdb:leader:u1');
 * election.isLeader$.subscribe((leader) => console.log({ leader }));
 * // later: hands leadership to the next instance waiting for it
 * election.close();
 * ```
 */
export class LeaderElection {
  readonly #leader = new BehaviorSubject(false);
  readonly #abort = new AbortController();
  #release: (() => void) | undefined;
  #closed = false;

  /** Whether this instance leads; replays the current value. */
  readonly isLeader$: Observable<boolean> = this.#leader.pipe(distinctUntilChanged());

  constructor(locks: LockManagerLike, name: string) {
    const held = new Promise<void>((resolve) => {
      this.#release = resolve;
    });
    locks
      .request(name, this.#abort.signal, async () => {
        if (this.#closed) return;
        this.#leader.next(true);
        await held;
      })
      .catch(() => undefined); // aborted while waiting: closed before ever leading
  }

  /** Whether this instance leads right now. */
  get isLeader(): boolean {
    return this.#leader.value;
  }

  /** Gives up leadership (or stops waiting for it). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#release?.();
    this.#leader.next(false);
    this.#leader.complete();
  }
}
