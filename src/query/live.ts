/**
 * Live queries: observables that re-evaluate only when a table they read changed, and emit only
 * when the result really changed.
 */
import { Observable } from 'rxjs';

interface Watcher {
  readonly tables: readonly string[];
  run(): void;
}

/**
 * The registry of live queries of one database. The database calls {@link LiveQueries.notify} once
 * per commit with every table the commit changed, so a transaction causes at most one emission per
 * subscriber.
 *
 * @example
 * ```ts
 * const live = new LiveQueries();
 * const rows$ = live.watch(['projects'], () => runQuery(view, spec), sameRows);
 * live.notify(new Set(['projects']));
 * ```
 */
export class LiveQueries {
  private readonly byTable = new Map<string, Set<Watcher>>();
  private readonly completers = new Set<() => void>();

  /**
   * An observable of `evaluate()`: emits the current value on subscribe, then again after each
   * {@link notify} that names one of `tables` and yields a value that is not `same` as the last one.
   * An error thrown by `evaluate` is sent to the subscriber (which then stops).
   */
  watch<T>(tables: readonly string[], evaluate: () => T, same: (a: T, b: T) => boolean): Observable<T> {
    return new Observable<T>((subscriber) => {
      let last: T;
      try {
        last = evaluate();
      } catch (e) {
        subscriber.error(e);
        return undefined;
      }
      subscriber.next(last);
      const watcher: Watcher = {
        tables,
        run: () => {
          let next: T;
          try {
            next = evaluate();
          } catch (e) {
            subscriber.error(e);
            return;
          }
          if (same(last, next)) return;
          last = next;
          subscriber.next(next);
        },
      };
      const complete = (): void => subscriber.complete();
      for (const t of tables) {
        let set = this.byTable.get(t);
        if (set === undefined) {
          set = new Set();
          this.byTable.set(t, set);
        }
        set.add(watcher);
      }
      this.completers.add(complete);
      return () => {
        this.completers.delete(complete);
        for (const t of tables) {
          const set = this.byTable.get(t);
          set?.delete(watcher);
          if (set?.size === 0) this.byTable.delete(t);
        }
      };
    });
  }

  /** Re-evaluates, once each, the live queries that read one of `changed`. */
  notify(changed: ReadonlySet<string>): void {
    if (changed.size === 0) return;
    const due = new Set<Watcher>();
    for (const t of changed) for (const w of this.byTable.get(t) ?? []) due.add(w);
    for (const w of due) w.run();
  }

  /** The number of active subscriptions (for tests and diagnostics). */
  get size(): number {
    return this.completers.size;
  }

  /** Completes every live query (the database is closing). */
  completeAll(): void {
    for (const complete of [...this.completers]) complete();
  }
}
