/**
 * An external store over an observable, shaped for React's `useSyncExternalStore`: `getSnapshot`
 * returns the latest value (connecting to the source on first use, so a source that emits at once,
 * like a live query, is there for the first render), `subscribe` shares ONE subscription of the
 * source among all listeners, and a listener is called only when the value changes by reference.
 */
import type { Observable, Unsubscribable } from 'rxjs';

/**
 * Timers the store uses to release a subscription nobody claimed (injected by tests).
 *
 * @example
 * ```ts
 * const scheduler: ReleaseScheduler = {
 *   schedule(fn, ms) {
 *     const handle = setTimeout(fn, ms);
 *     return () => clearTimeout(handle);
 *   },
 * };
 * ```
 */
export interface ReleaseScheduler {
  /** Runs `fn` after `ms` milliseconds; returns a cancel function. */
  schedule(fn: () => void, ms: number): () => void;
}

const defaultScheduler: ReleaseScheduler = {
  schedule(fn, ms) {
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
};

/**
 * How long a subscription opened by a render (for its first value) stays open waiting for the
 * component to mount and subscribe. A render that React throws away (Strict Mode's second render,
 * an interrupted transition) never subscribes; after this delay its subscription is closed.
 *
 * @example
 * ```ts
 * console.log(`unclaimed subscriptions close after ${UNCLAIMED_RELEASE_MS} ms`);
 * ```
 */
export const UNCLAIMED_RELEASE_MS = 5_000;

type State<T> =
  | { readonly kind: 'empty' }
  | { readonly kind: 'value'; readonly value: T }
  | { readonly kind: 'error'; readonly error: unknown };

/**
 * One observable as an external store. See the module documentation.
 *
 * @example
 * ```ts
 * const store = new ObservableStore(db.table('projects').query().observe());
 * const rows = useSyncExternalStore(store.subscribe, store.getSnapshot);
 * ```
 */
export class ObservableStore<T> {
  readonly #source: Observable<T>;
  readonly #scheduler: ReleaseScheduler;
  readonly #listeners = new Set<() => void>();
  #state: State<T> = { kind: 'empty' };
  #subscription: Unsubscribable | null = null;
  #cancelRelease: (() => void) | null = null;
  #releaseQueued = false;
  /** The source completed or failed: it is not subscribed again, and its last state stays. */
  #finished = false;

  constructor(source: Observable<T>, scheduler: ReleaseScheduler = defaultScheduler) {
    this.#source = source;
    this.#scheduler = scheduler;
  }

  /** The latest value, or `undefined` before the first one. Throws the source's error, if any. */
  readonly getSnapshot = (): T | undefined => {
    if (this.#subscription === null && this.#state.kind === 'empty' && !this.#finished) {
      this.#connect();
      // Opened by a render: give the component time to mount and claim it, else close it.
      if (this.#listeners.size === 0 && this.#subscription !== null) this.#scheduleUnclaimedRelease();
    }
    const state = this.#state;
    if (state.kind === 'error') throw state.error;
    return state.kind === 'value' ? state.value : undefined;
  };

  /** Adds a change listener; returns the function that removes it. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    this.#cancelPendingRelease();
    if (this.#subscription === null && !this.#finished) this.#connect();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#queueRelease();
    };
  };

  /** Whether the source is subscribed (for tests and diagnostics). */
  get connected(): boolean {
    return this.#subscription !== null;
  }

  #connect(): void {
    const subscription = this.#source.subscribe({
      next: (value) => {
        const state = this.#state;
        if (state.kind === 'value' && Object.is(state.value, value)) return;
        this.#state = { kind: 'value', value };
        this.#emit();
      },
      error: (error: unknown) => {
        this.#finish();
        this.#state = { kind: 'error', error };
        this.#emit();
      },
      // Keep the last value: nothing more will come.
      complete: () => this.#finish(),
    });
    if (this.#finished) subscription.unsubscribe();
    else this.#subscription = subscription;
  }

  #finish(): void {
    this.#finished = true;
    this.#subscription = null;
    this.#cancelPendingRelease();
  }

  #emit(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #scheduleUnclaimedRelease(): void {
    this.#cancelPendingRelease();
    this.#cancelRelease = this.#scheduler.schedule(() => {
      this.#cancelRelease = null;
      if (this.#listeners.size === 0) this.#disconnect();
    }, UNCLAIMED_RELEASE_MS);
  }

  /**
   * Releases after the current task's microtasks: Strict Mode unmounts and remounts effects
   * synchronously, and a remount must find the same subscription (re-subscribing would re-run a
   * live query and cause an extra render).
   */
  #queueRelease(): void {
    if (this.#releaseQueued) return;
    this.#releaseQueued = true;
    queueMicrotask(() => {
      this.#releaseQueued = false;
      if (this.#listeners.size === 0) this.#disconnect();
    });
  }

  #cancelPendingRelease(): void {
    this.#cancelRelease?.();
    this.#cancelRelease = null;
  }

  #disconnect(): void {
    this.#cancelPendingRelease();
    const subscription = this.#subscription;
    this.#subscription = null;
    // Forget the value: a later subscriber must see fresh data, not what was current back then.
    if (!this.#finished) this.#state = { kind: 'empty' };
    subscription?.unsubscribe();
  }
}
