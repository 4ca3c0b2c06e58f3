/**
 * The "simulate offline" switch: the sync engine's online signal is the browser's
 * (`navigator.onLine` and its events) AND this switch, so turning it on makes the engine behave
 * exactly as with no network (no push, no pull, edits stay in the outbox) while the page keeps
 * working. The switch is kept per window across reloads (sessionStorage), so "simulate offline,
 * edit, reload" reloads offline, as a lost network would.
 */

/** A boolean signal with change notifications (the shape the sync engine's `online` option takes). */
export interface OnlineSignal {
  get(): boolean;
  subscribe(listener: (value: boolean) => void): () => void;
}

const STORAGE_KEY = 'userdb-demo:simulate-offline';

function storage(): Storage | undefined {
  try {
    return globalThis.sessionStorage;
  } catch {
    return undefined; // storage disabled: the switch just does not survive a reload
  }
}

/** The switch plus the browser's connectivity, as one signal. */
export class DemoNetwork implements OnlineSignal {
  #simulatedOffline = storage()?.getItem(STORAGE_KEY) === '1';
  /** Listeners of the combined signal: called when `get()` changes. */
  readonly #listeners = new Set<(value: boolean) => void>();
  /** Listeners of the switch: called when `simulatedOffline` changes, whatever the browser says. */
  readonly #switchListeners = new Set<() => void>();
  #last: boolean;

  constructor() {
    this.#last = this.get();
    const onChange = (): void => this.#notify();
    window.addEventListener('online', onChange);
    window.addEventListener('offline', onChange);
  }

  /** Whether "simulate offline" is on. */
  get simulatedOffline(): boolean {
    return this.#simulatedOffline;
  }

  setSimulatedOffline(offline: boolean): void {
    if (offline === this.#simulatedOffline) return;
    this.#simulatedOffline = offline;
    try {
      if (offline) storage()?.setItem(STORAGE_KEY, '1');
      else storage()?.removeItem(STORAGE_KEY);
    } catch {
      // quota or disabled storage: the switch still works for this page
    }
    for (const listener of [...this.#switchListeners]) listener();
    this.#notify();
  }

  /** Subscribes to the switch itself (it changes even while the browser is offline). */
  subscribeSwitch(listener: () => void): () => void {
    this.#switchListeners.add(listener);
    return () => this.#switchListeners.delete(listener);
  }

  get(): boolean {
    return navigator.onLine && !this.#simulatedOffline;
  }

  subscribe(listener: (value: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    const value = this.get();
    if (value === this.#last) return;
    this.#last = value;
    for (const listener of [...this.#listeners]) listener(value);
  }
}
