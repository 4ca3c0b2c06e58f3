/**
 * Row-level change sets: what a commit, replay or reload changed in the view, table by table, so
 * that live queries re-evaluate only what the changed rows can affect.
 */
import type { Row } from '../doc/index.js';

/** One changed row: its value before the first change and after the last one (`undefined`: absent). */
export interface RowChange {
  readonly old: Row | undefined;
  new: Row | undefined;
}

/**
 * The changes of one table: `'all'` when the table as a whole changed (created, dropped, a schema
 * change, an order that no row-level change explains), else the changed rows by row key.
 */
export type TableChange = 'all' | ReadonlyMap<string, RowChange>;

/**
 * Collects row-level changes (first old value, last new value per row; whole tables marked `'all'`).
 *
 * @example
 * ```ts
 * const changes = new ChangeSet();
 * view.apply(ops, new Set(), changes);
 * live.notify(changes);
 * ```
 */
export class ChangeSet {
  private readonly byTable = new Map<string, Map<string, RowChange> | 'all'>();

  /** A change set in which every table of `tables` changed as a whole. */
  static ofTables(tables: Iterable<string>): ChangeSet {
    const set = new ChangeSet();
    for (const t of tables) set.table(t);
    return set;
  }

  /** Records that row `key` of `table` went from `old` to `next`. */
  row(table: string, key: string, old: Row | undefined, next: Row | undefined): void {
    let t = this.byTable.get(table);
    if (t === 'all') return;
    if (t === undefined) {
      t = new Map();
      this.byTable.set(table, t);
    }
    const c = t.get(key);
    if (c === undefined) t.set(key, { old, new: next });
    else c.new = next;
  }

  /** Records that `table` changed as a whole. */
  table(table: string): void {
    this.byTable.set(table, 'all');
  }

  /** Adds every change of `other` (a later change set) to this one. */
  merge(other: ChangeSet): void {
    for (const [table, change] of other.byTable) {
      if (change === 'all') this.table(table);
      else for (const [key, c] of change) this.row(table, key, c.old, c.new);
    }
  }

  /** The changes of `table`, or `undefined` when it did not change. */
  get(table: string): TableChange | undefined {
    return this.byTable.get(table);
  }

  /** The names of the tables that changed. */
  tables(): Set<string> {
    return new Set(this.byTable.keys());
  }

  /** The number of tables that changed. */
  get size(): number {
    return this.byTable.size;
  }
}
