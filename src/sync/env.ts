/**
 * The environment the sync engine runs in, injected so tests own time, connectivity, focus and
 * locks (the way TanStack Query's onlineManager/focusManager/timeoutManager do). Every piece has a
 * browser default that degrades gracefully in Node.
 */

/** An opaque timer handle. */
export type TimerHandle = unknown;

/** Time and timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A boolean signal with change notifications (online, focused). */
export interface Signal {
  get(): boolean;
  /** Calls `listener` with the new value on every change; returns the unsubscribe function. */
  subscribe(listener: (value: boolean) => void): () => void;
}

/**
 * A named exclusive lock. `request` waits for the lock, calls `onAcquired` while holding it, and
 * holds it until the promise `onAcquired` returns settles. Aborting `signal` gives up waiting.
 */
export interface LockManagerLike {
  request(name: string, signal: AbortSignal, onAcquired: () => Promise<void>): Promise<void>;
}

/** The whole injected environment of the sync engine. */
export interface SyncEnvironment {
  clock: Clock;
  random: () => number;
  online: Signal;
  focus: Signal;
  locks: LockManagerLike;
}

/**
 * The real clock.
 *
 * @example
 * ```ts
 * const handle = systemClock.setTimeout(() => console.log('later'), 100);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/**
 * A signal that can be set by hand; the default for platforms without the browser events and the
 * tool of tests.
 *
 * @example
 * ```ts
 * const online = new ManualSignal(true);
 * online.set(false); // listeners see false
 * ```
 */
export class ManualSignal implements Signal {
  #value: boolean;
  readonly #listeners = new Set<(value: boolean) => void>();

  constructor(initial: boolean) {
    this.#value = initial;
  }

  get(): boolean {
    return this.#value;
  }

  set(value: boolean): void {
    if (value === this.#value) return;
    this.#value = value;
    for (const listener of [...this.#listeners]) listener(value);
  }

  /** Notifies listeners with the current value even though it did not change (a focus event). */
  pulse(): void {
    for (const listener of [...this.#listeners]) listener(this.#value);
  }

  subscribe(listener: (value: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

function windowLike(): EventTargetLike | undefined {
  const w = (globalThis as { window?: unknown }).window;
  return w !== undefined && typeof (w as EventTargetLike).addEventListener === 'function'
    ? (w as EventTargetLike)
    : undefined;
}

/**
 * `navigator.onLine` with the `online`/`offline` window events; always online where there is no
 * window (Node), where failed requests alone tell the engine it is offline.
 *
 * @example
 * ```ts
 * browserOnlineSignal().subscribe((online) => console.log(online ? 'online' : 'offline'));
 * ```
 */
export function browserOnlineSignal(): Signal {
  const w = windowLike();
  const nav = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
  const read = () => (w !== undefined && typeof nav?.onLine === 'boolean' ? nav.onLine : true);
  return {
    get: read,
    subscribe(listener) {
      if (w === undefined) return () => undefined;
      const on = () => listener(read());
      w.addEventListener('online', on);
      w.addEventListener('offline', on);
      return () => {
        w.removeEventListener('online', on);
        w.removeEventListener('offline', on);
      };
    },
  };
}

/**
 * Page visibility and window focus; every `focus` or change to visible notifies `true`.
 *
 * @example
 * ```ts
 * browserFocusSignal().subscribe((focused) => focused && console.log('back'));
 * ```
 */
export function browserFocusSignal(): Signal {
  const w = windowLike();
  const doc = (globalThis as { document?: { visibilityState?: string } & EventTargetLike }).document;
  const read = () => (doc?.visibilityState === undefined ? true : doc.visibilityState !== 'hidden');
  return {
    get: read,
    subscribe(listener) {
      if (w === undefined) return () => undefined;
      const on = () => listener(read());
      w.addEventListener('focus', on);
      doc?.addEventListener('visibilitychange', on);
      return () => {
        w.removeEventListener('focus', on);
        doc?.removeEventListener('visibilitychange', on);
      };
    },
  };
}
