/**
 * The "simulate offline" switch: the sync engine's online signal is the browser's
 * (`navigator.onLine` and its events) AND this switch, so turning it on makes the engine behave
 * exactly as with no network (no push, no pull, edits stay in the outbox) while the page keeps
 * working.
 */

/** A boolean signal with change notifications (the shape the sync engine's `online` option takes). */
export interface OnlineSignal {
  get(): boolean;
  subscribe(listener: (value: boolean) => void): () => void;
}

/** The switch plus the browser's connectivity, as one signal. */
export class DemoNetwork implements OnlineSignal {
  #simulatedOffline = false;
  readonly #listeners = new Set<(value: boolean) => void>();
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
    this.#simulatedOffline = offline;
    this.#notify();
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
