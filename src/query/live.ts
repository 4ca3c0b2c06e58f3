/**
 * Live queries: observables that re-evaluate only when a table they read changed (incrementally,
 * from the changed rows, when they know how), and emit only when the result really changed.
 */
import { Observable } from 'rxjs';
import { ChangeSet } from './changes.js';

/**
 * A value kept up to date from change sets.
 *
 * @example
 * ```ts
 * const m: Maintained<number> = { value: () => n, update: (changes) => n + 1 };
 * ```
 */
export interface Maintained<T> {
  /** The current value (computed from scratch). */
  value(): T;
  /** The value after `changes` (a commit that touched one of the watched tables). */
  update(changes: ChangeSet): T;
}

interface Watcher {
  readonly tables: readonly string[];
  run(changes: ChangeSet): void;
}

/**
 * The registry of live queries of one database. The database calls {@link LiveQueries.notify} once
 * per commit with what the commit changed, so a transaction causes at most one emission per
 * subscriber.
 *
 * @example
 * ```ts
 * const live = new LiveQueries();
 * const rows$ = live.watch(['projects'], () => runQuery(view, spec), sameRows);
 * live.notify(changes); // a ChangeSet, or a set of table names (each changed as a whole)
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
    return this.maintain(tables, () => ({ value: evaluate, update: evaluate }), same);
  }

  /**
   * An observable of a value maintained from change sets: `open()` is called once per subscriber;
   * its `value()` is emitted on subscribe, and `update(changes)` runs after each {@link notify} that
   * names one of `tables`; a result that is not `same` as the last one is emitted. An error thrown
   * by either is sent to the subscriber (which then stops).
   */
  maintain<T>(
    tables: readonly string[],
    open: () => Maintained<T>,
    same: (a: T, b: T) => boolean,
  ): Observable<T> {
    return new Observable<T>((subscriber) => {
      let state: Maintained<T>;
      let last: T;
      try {
        state = open();
        last = state.value();
      } catch (e) {
        subscriber.error(e);
        return undefined;
      }
      subscriber.next(last);
      const watcher: Watcher = {
        tables,
        run: (changes) => {
          let next: T;
          try {
            next = state.update(changes);
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

  /**
   * Updates, once each, the live queries that read a table in `changed`: a {@link ChangeSet}, or a
   * set of table names (each then counts as changed as a whole).
   */
  notify(changed: ReadonlySet<string> | ChangeSet): void {
    if (changed.size === 0) return;
    const changes = changed instanceof ChangeSet ? changed : ChangeSet.ofTables(changed);
    const due = new Set<Watcher>();
    for (const t of changes.tables()) for (const w of this.byTable.get(t) ?? []) due.add(w);
    for (const w of due) w.run(changes);
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
