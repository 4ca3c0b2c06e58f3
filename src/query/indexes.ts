/**
 * Secondary indexes of the view: for each index, the rows of a table sorted by the index's fields and
 * then by the row's position in the table (its `ord`), so that rows with equal values keep the
 * table's order, exactly as the query evaluator's stable sort does.
 *
 * Values are compared in a normalized form (datetimes as one fixed-width string per instant), which
 * orders exactly like `compareValues` for the field types an index may cover.
 */
import type { FieldType, Json, Row } from '../doc/index.js';

/** A row of the view with its row key and its position in the table (increasing in table order). */
export interface Entry {
  readonly key: string;
  row: Row;
  ord: number;
  /**
   * The value of field `name` (null when absent), as `row[name]` would give it, for entries that can
   * tell without making their row (see the view's rows read from the compact base).
   */
  cell?(name: string): Json;
}

/** One indexed field. */
export interface IndexField {
  readonly name: string;
  readonly type: FieldType;
}

/** Field types an index may cover (scalars with a total order). */
export const INDEXABLE_TYPES: ReadonlySet<FieldType> = new Set([
  'string',
  'number',
  'integer',
  'boolean',
  'date',
  'time',
  'datetime',
]);

const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/i;

/** A datetime as one string that orders like its instant (fixed-width seconds, then the fraction). */
function datetimeKey(s: string): string {
  const m = DATETIME_RE.exec(s);
  if (m === null) return s;
  const n = (i: number): number => Number(m[i] ?? 0);
  let seconds = Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6)) / 1000;
  if (m[8] !== undefined) seconds -= (m[8] === '-' ? -1 : 1) * (n(9) * 3600 + n(10) * 60);
  return `${String(seconds + 1e12).padStart(14, '0')}.${(m[7] ?? '').replace(/0+$/, '')}`;
}

/** The normalized form of a cell value of `type` (see the module docs). */
export function sortValue(v: Json, type: FieldType): Json {
  return type === 'datetime' && typeof v === 'string' ? datetimeKey(v) : v;
}

/** The order of JSON kinds in comparisons: null < boolean < number < string < array < object. */
export function rank(v: Json): number {
  if (v === null) return 0;
  switch (typeof v) {
    case 'boolean':
      return 1;
    case 'number':
      return 2;
    case 'string':
      return 3;
    default:
      return Array.isArray(v) ? 4 : 5;
  }
}

/** Compares two normalized scalar values (null first, then booleans, numbers, strings). */
export function compareSortValues(a: Json, b: Json): number {
  if (a === b) return 0;
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 2) return (a as number) - (b as number);
  if (ra === 1) return a === false ? -1 : 1;
  return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
}

function cell(row: Row, field: string): Json {
  return Object.hasOwn(row, field) ? (row[field] as Json) : null;
}

/**
 * One index over one table: the table's entries sorted by (normalized field values, ord). Entries
 * are held directly (no per-row copy of the values): an entry's row must be removed from the index
 * before the view replaces it and inserted again after.
 *
 * @example
 * ```ts
 * const index = new SortedIndex([{ name: 'status', type: 'string' }]);
 * index.build(entries);
 * index.bound(['open'], false); // position of the first 'open' row
 * ```
 */
export class SortedIndex {
  private items: Entry[] = [];
  /** Whether values need normalizing (datetimes): then searches normalize each value they read. */
  private readonly plain: boolean;
  /** Set while the index is not built: where its entries come from when it is first read. */
  private source: (() => Iterable<Entry>) | undefined;

  constructor(readonly fields: readonly IndexField[]) {
    this.plain = fields.every((f) => f.type !== 'datetime');
  }

  /**
   * An index built on its first read (any of {@link size}, {@link at}, {@link bound}) from the
   * entries `source` yields then. Until then {@link insert} and {@link remove} do nothing: the
   * build reads the rows as they are at that time.
   */
  static lazy(fields: readonly IndexField[], source: () => Iterable<Entry>): SortedIndex {
    const index = new SortedIndex(fields);
    index.source = source;
    return index;
  }

  /** False until a lazy index was first read (and built). */
  get built(): boolean {
    return this.source === undefined;
  }

  /** The sorted entries, building the index first if it is lazy and not built yet. */
  private get list(): Entry[] {
    const source = this.source;
    if (source !== undefined) this.build(source());
    return this.items;
  }

  /** The indexed field names. */
  get names(): string[] {
    return this.fields.map((f) => f.name);
  }

  /** The number of indexed rows. */
  get size(): number {
    return this.list.length;
  }

  /** The entry at position `i`. */
  at(i: number): Entry {
    return this.list[i] as Entry;
  }

  /** The normalized index values of `row`. */
  valuesOf(row: Row): Json[] {
    return this.fields.map((f) => sortValue(cell(row, f.name), f.type));
  }

  /** Compares the first `vals.length` index values of `row` with `vals` (normalized). */
  private compareRow(row: Row, vals: readonly Json[]): number {
    for (let i = 0; i < vals.length; i++) {
      const f = this.fields[i] as IndexField;
      const v = cell(row, f.name);
      const d = compareSortValues(this.plain ? v : sortValue(v, f.type), vals[i] as Json);
      if (d !== 0) return d;
    }
    return 0;
  }

  /** True when `next` has other index values than `prev` (so its entry must move). */
  moves(prev: Row, next: Row): boolean {
    for (const f of this.fields) {
      const a = cell(prev, f.name);
      const b = cell(next, f.name);
      if (a !== b && compareSortValues(sortValue(a, f.type), sortValue(b, f.type)) !== 0) return true;
    }
    return false;
  }

  /**
   * Replaces the content by `entries` (in any order). Each field's distinct values are sorted once
   * and replaced by their rank, so the rows are sorted by one number (their ranks in mixed radix)
   * and then by `ord`: by counting when there are few distinct keys and the entries come in table
   * order (as the view gives them), else by a comparison sort on those numbers.
   */
  build(entries: Iterable<Entry>): void {
    this.source = undefined;
    const list: Entry[] = [];
    const columns: Json[][] = this.fields.map(() => []);
    for (const entry of entries) {
      list.push(entry);
      for (let k = 0; k < this.fields.length; k++) {
        const f = this.fields[k] as IndexField;
        const v = entry.cell === undefined ? cell(entry.row, f.name) : entry.cell(f.name);
        (columns[k] as Json[]).push(sortValue(v, f.type));
      }
    }
    const n = list.length;
    const keys = new Float64Array(n);
    let radix = 1;
    for (const column of columns) {
      const distinct = [...new Set(column)].sort(compareSortValues);
      radix *= distinct.length;
      if (radix > 2 ** 52) {
        this.buildByValues(list, columns);
        return;
      }
      const rank = new Map<Json, number>();
      for (let i = 0; i < distinct.length; i++) rank.set(distinct[i] as Json, i);
      for (let i = 0; i < n; i++)
        keys[i] = (keys[i] as number) * distinct.length + (rank.get(column[i] as Json) as number);
    }
    let inOrder = true;
    for (let i = 1; i < n && inOrder; i++) inOrder = (list[i - 1] as Entry).ord < (list[i] as Entry).ord;
    if (inOrder && radix <= Math.max(1024, 2 * n)) {
      // counting sort: stable, so rows with equal values stay in table order
      const counts = new Uint32Array(radix + 1);
      for (let i = 0; i < n; i++) {
        const slot = (keys[i] as number) + 1;
        counts[slot] = (counts[slot] as number) + 1;
      }
      for (let r = 0; r < radix; r++) counts[r + 1] = (counts[r + 1] as number) + (counts[r] as number);
      const items: Entry[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const key = keys[i] as number;
        const at = counts[key] as number;
        counts[key] = at + 1;
        items[at] = list[i] as Entry;
      }
      this.items = items;
      return;
    }
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort(
      (a, b) => (keys[a] as number) - (keys[b] as number) || (list[a] as Entry).ord - (list[b] as Entry).ord,
    );
    this.items = order.map((i) => list[i] as Entry);
  }

  /** {@link build} for keys too many to number: a comparison sort on the values. */
  private buildByValues(list: readonly Entry[], columns: readonly Json[][]): void {
    const order = Array.from({ length: list.length }, (_, i) => i);
    const vals = (i: number) => columns.map((c) => c[i] as Json);
    order.sort((a, b) => comparePrefix(vals(a), vals(b)) || (list[a] as Entry).ord - (list[b] as Entry).ord);
    this.items = order.map((i) => list[i] as Entry);
  }

  /** The position of `entry` (with its current row and ord) in the sort order. */
  private position(entry: Entry): number {
    const vals = this.valuesOf(entry.row);
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.items[mid] as Entry;
      const d = this.compareRow(m.row, vals) || m.ord - entry.ord;
      if (d < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds `entry` (with its current row and ord). */
  insert(entry: Entry): void {
    if (this.source !== undefined) return;
    this.items.splice(this.position(entry), 0, entry);
  }

  /** Removes `entry` (as it was inserted: call before changing its row). */
  remove(entry: Entry): void {
    if (this.source !== undefined) return;
    const lo = this.position(entry);
    if (this.items[lo] === entry) this.items.splice(lo, 1);
    else {
      const i = this.items.indexOf(entry);
      if (i >= 0) this.items.splice(i, 1);
    }
  }

  /**
   * The first position whose leading `vals.length` values compare greater than or equal to `vals`
   * (strictly greater when `strict`). `vals` are normalized values.
   */
  bound(vals: readonly Json[], strict: boolean): number {
    const items = this.list;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const d = this.compareRow((items[mid] as Entry).row, vals);
      if (d < 0 || (strict && d === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function comparePrefix(a: readonly Json[], b: readonly Json[]): number {
  for (let i = 0; i < b.length; i++) {
    const d = compareSortValues(a[i] as Json, b[i] as Json);
    if (d !== 0) return d;
  }
  return 0;
}
