/**
 * Live query results maintained incrementally from row-level changes: a sorted (and possibly offset
 * and limited) window of matching rows, and a count of matching rows.
 *
 * A window holds the first `offset + limit` matches (all of them without a limit), in result order.
 * For each changed row it removes the row's old version if it was shown and inserts the new one if
 * it matches and ranks before the window's end; when rows left a full window, it refills from the
 * rows that rank after the window's old end (through an index when one gives the order). A
 * table-level change, or a change of many rows at once, re-evaluates the query from scratch.
 */
import type { Row } from '../doc/index.js';
import type { TableChange } from './changes.js';
import {
  type CompiledQuery,
  collect,
  compareRanked,
  compileQuery,
  insertSorted,
  matches,
  type QuerySpec,
  type Ranked,
  rankEntry,
} from './evaluate.js';
import type { View } from './view.js';

/** More changed rows than this share of the table: re-evaluate from scratch instead. */
const FULL_SHARE = 1 / 8;
const FULL_MIN = 64;

function bigChange(view: View, table: string, change: ReadonlyMap<string, unknown>): boolean {
  return change.size > Math.max(FULL_MIN, view.size(table) * FULL_SHARE);
}

/**
 * The result of one query, kept up to date from the changes of its table.
 *
 * @example
 * ```ts
 * const live = new LiveResult(view, spec);
 * live.reset();
 * view.apply(ops, new Set(), changes);
 * live.update(changes.get(spec.table));
 * live.rows();
 * ```
 */
export class LiveResult {
  private q: CompiledQuery | undefined;
  private window: Ranked[] = [];
  private readonly members = new Map<string, Ranked>();
  /** The window holds every match. */
  private complete = true;
  private readonly k: number;
  /** The result rows, until the window changes. */
  private output: Row[] | undefined;

  constructor(
    private readonly view: View,
    private readonly spec: QuerySpec,
  ) {
    this.k = spec.limit === undefined ? Number.POSITIVE_INFINITY : spec.offset + spec.limit;
  }

  /** Evaluates from scratch (throws `ValidationError` as `runQuery` does). */
  reset(): void {
    this.output = undefined;
    this.q = compileQuery(this.view, this.spec);
    this.members.clear();
    if (this.q === undefined) {
      this.window = [];
      this.complete = true;
      return;
    }
    this.window = collect(this.view, this.q, this.k).ranked;
    this.complete = this.window.length < this.k;
    for (const r of this.window) this.members.set(r.entry.key, r);
  }

  /** The result rows. */
  rows(): Row[] {
    if (this.output !== undefined) return this.output;
    const out: Row[] = [];
    for (let i = this.spec.offset; i < this.window.length; i++)
      out.push((this.window[i] as Ranked).entry.row);
    this.output = out;
    return out;
  }

  /** Applies the changes of the query's table (nothing to do when `change` is undefined). */
  update(change: TableChange | undefined): void {
    if (change === undefined) return;
    const q = this.q;
    if (change === 'all' || q === undefined || bigChange(this.view, this.spec.table, change)) {
      this.reset();
      return;
    }
    if (this.k === 0) return;
    const boundary = this.complete ? undefined : this.window[this.window.length - 1];
    let touched = false;
    for (const [key, c] of change) {
      const shown = this.members.get(key);
      if (shown !== undefined) {
        this.remove(q, shown);
        touched = true;
      }
      if (c.new === undefined || !matches(q, c.new)) continue;
      const ord = this.view.ordOf(this.spec.table, key);
      if (ord === undefined) continue;
      const r = rankEntry(q, { key, row: c.new, ord });
      if (boundary !== undefined && compareRanked(q, r, boundary) > 0) continue;
      insertSorted(q, this.window, r);
      this.members.set(key, r);
      touched = true;
    }
    if (!touched) return;
    this.output = undefined;
    if (this.window.length > this.k) {
      for (const r of this.window.splice(this.k)) this.members.delete(r.entry.key);
      this.complete = false;
    } else if (!this.complete && this.window.length < this.k) {
      const want = this.k - this.window.length;
      const more = collect(this.view, q, want, boundary).ranked;
      for (const r of more) {
        this.window.push(r);
        this.members.set(r.entry.key, r);
      }
      this.complete = more.length < want;
    }
  }

  private remove(q: CompiledQuery, r: Ranked): void {
    this.members.delete(r.entry.key);
    let lo = 0;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareRanked(q, this.window[mid] as Ranked, r) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (this.window[lo] === r) this.window.splice(lo, 1);
    else {
      const i = this.window.indexOf(r);
      if (i >= 0) this.window.splice(i, 1);
    }
  }
}

/**
 * The number of rows of a query (after offset and limit), kept up to date from row-level changes.
 *
 * @example
 * ```ts
 * const n = new LiveCount(view, spec);
 * n.reset();
 * n.update(changes.get(spec.table));
 * n.value();
 * ```
 */
export class LiveCount {
  private q: CompiledQuery | undefined;
  private total = 0;

  constructor(
    private readonly view: View,
    private readonly spec: QuerySpec,
  ) {}

  /** Counts from scratch (throws `ValidationError` as `runQuery` does). */
  reset(): void {
    this.q = compileQuery(this.view, this.spec);
    this.total =
      this.q === undefined ? 0 : collect(this.view, this.q, Number.POSITIVE_INFINITY).ranked.length;
  }

  /** The count after offset and limit. */
  value(): number {
    const n = Math.max(0, this.total - this.spec.offset);
    return this.spec.limit === undefined ? n : Math.min(n, this.spec.limit);
  }

  /** Applies the changes of the query's table. */
  update(change: TableChange | undefined): void {
    if (change === undefined) return;
    const q = this.q;
    if (change === 'all' || q === undefined || bigChange(this.view, this.spec.table, change)) {
      this.reset();
      return;
    }
    for (const c of change.values()) {
      if (c.old !== undefined && matches(q, c.old)) this.total--;
      if (c.new !== undefined && matches(q, c.new)) this.total++;
    }
  }
}
