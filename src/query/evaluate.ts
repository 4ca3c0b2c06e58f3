/**
 * Query evaluation over a {@link ReadLayer}: filter, stable multi-key sort, offset/limit.
 *
 * Semantics:
 * - `==`, `!=` and `in` use JSON equality (`null == null` holds); datetimes compare by instant,
 *   so `…T00:00:00Z` equals `…T00:00:00+00:00`.
 * - `<`, `<=`, `>`, `>=` never match `null` (as in SQL) nor a value of another JSON kind.
 * - Ordering: `null` first in ascending order (last in descending), then booleans, numbers,
 *   strings (by UTF-16 code units; datetimes by instant, with microsecond precision and beyond),
 *   arrays and objects (by their JSON text). Ties keep the table's order (the sort is stable).
 * - A query on a missing table returns no rows.
 */
import {
  encodeValue,
  type FieldType,
  type Json,
  jsonEqual,
  keyOf,
  type Row,
  type TableSchema,
} from '../doc/index.js';
import { ValidationError } from '../errors.js';
import { compareSortValues, type Entry, rank, type SortedIndex, sortValue } from './indexes.js';
import type { ReadLayer } from './view.js';

/**
 * Comparison operators of `where`.
 *
 * @example
 * ```ts
 * const op: WhereOp = 'in';
 * ```
 */
export type WhereOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in';

/** The operators accepted by `where`. */
export const WHERE_OPS: readonly WhereOp[] = ['==', '!=', '<', '<=', '>', '>=', 'in'];

/** One `where` condition as given by the application. */
export interface Condition {
  field: string;
  op: WhereOp;
  value: unknown;
}

/**
 * Sort direction of `orderBy`.
 *
 * @example
 * ```ts
 * query.orderBy('created_at', 'desc' satisfies SortDirection);
 * ```
 */
export type SortDirection = 'asc' | 'desc';

/** One `orderBy` key. */
export interface SortKey {
  field: string;
  dir: SortDirection;
}

/** A query, as plain data. */
export interface QuerySpec {
  table: string;
  where: readonly Condition[];
  orderBy: readonly SortKey[];
  offset: number;
  limit: number | undefined;
}

const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/i;

/** `[epoch seconds, fraction digits]` of an ISO datetime, or undefined when it is not one. */
function instant(s: string): [number, string] | undefined {
  const m = DATETIME_RE.exec(s);
  if (m === null) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  let seconds = Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6)) / 1000;
  if (m[8] !== undefined) seconds -= (m[8] === '-' ? -1 : 1) * (n(9) * 3600 + n(10) * 60);
  return [seconds, (m[7] ?? '').replace(/0+$/, '')];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareDatetimes(a: string, b: string): number {
  const x = instant(a);
  const y = instant(b);
  if (x === undefined || y === undefined) return compareStrings(a, b);
  if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
  const width = Math.max(x[1].length, y[1].length);
  return compareStrings(x[1].padEnd(width, '0'), y[1].padEnd(width, '0'));
}

/** Total order on JSON values of one field (see the module docs). */
export function compareValues(a: Json, b: Json, type: FieldType): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return a === b ? 0 : a === false ? -1 : 1;
    case 2:
      return (a as number) - (b as number);
    case 3:
      return type === 'datetime'
        ? compareDatetimes(a as string, b as string)
        : compareStrings(a as string, b as string);
    default:
      return compareStrings(JSON.stringify(a), JSON.stringify(b));
  }
}

function equalValues(a: Json, b: Json, type: FieldType): boolean {
  if (type === 'datetime' && typeof a === 'string' && typeof b === 'string')
    return compareDatetimes(a, b) === 0;
  return jsonEqual(a, b);
}

interface Prepared {
  field: string;
  type: FieldType;
  op: WhereOp;
  /** The encoded value(s) compared with (one, or the list of `in`). */
  values: Json[];
  test: (v: Json) => boolean;
}

function fieldType(schema: TableSchema, table: string, field: string): FieldType {
  const def = schema.fields.find((f) => f.name === field);
  if (def === undefined) throw new ValidationError('unknown field in query', { table, field });
  return def.type;
}

function prepare(c: Condition, schema: TableSchema, table: string): Prepared {
  const type = fieldType(schema, table, c.field);
  const where = { table, field: c.field };
  if (!WHERE_OPS.includes(c.op))
    throw new ValidationError(`unknown query operator ${JSON.stringify(c.op)}`, where);
  if (c.op === 'in') {
    if (!Array.isArray(c.value)) throw new ValidationError(`"in" needs an array of values`, where);
    const values = c.value.map((v: unknown) => encodeValue(type, v, where));
    return {
      field: c.field,
      type,
      op: 'in',
      values,
      test: (v) => values.some((x) => equalValues(v, x, type)),
    };
  }
  const x = encodeValue(type, c.value, where);
  const base = { field: c.field, type, op: c.op, values: [x] };
  switch (c.op) {
    case '==':
      return { ...base, test: (v) => equalValues(v, x, type) };
    case '!=':
      return { ...base, test: (v) => !equalValues(v, x, type) };
    default: {
      const op = c.op;
      return {
        ...base,
        test: (v) => {
          if (v === null || x === null || rank(v) !== rank(x)) return false;
          const d = compareValues(v, x, type);
          return op === '<' ? d < 0 : op === '<=' ? d <= 0 : op === '>' ? d > 0 : d >= 0;
        },
      };
    }
  }
}

function cell(row: Row, field: string): Json {
  return Object.hasOwn(row, field) ? (row[field] as Json) : null;
}

interface SortField {
  field: string;
  sign: number;
  type: FieldType;
}

/** A query checked against its table's schema: prepared conditions and sort keys. */
export interface CompiledQuery {
  readonly spec: QuerySpec;
  readonly schema: TableSchema;
  readonly conditions: readonly Prepared[];
  readonly sort: readonly SortField[];
}

/**
 * Checks `spec` against the schema of its table: `undefined` when the table does not exist, else the
 * prepared query. Throws {@link ValidationError} for an unknown field or operator or a value that
 * does not fit the field's type.
 */
export function compileQuery(layer: ReadLayer, spec: QuerySpec): CompiledQuery | undefined {
  const schema = layer.schemaOf(spec.table);
  if (schema === undefined) return undefined;
  const conditions = spec.where.map((c) => prepare(c, schema, spec.table));
  const sort = spec.orderBy.map((k) => ({
    field: k.field,
    sign: k.dir === 'desc' ? -1 : 1,
    type: fieldType(schema, spec.table, k.field),
  }));
  return { spec, schema, conditions, sort };
}

/** True when `row` satisfies every condition of `q`. */
export function matches(q: CompiledQuery, row: Row): boolean {
  for (const c of q.conditions) if (!c.test(cell(row, c.field))) return false;
  return true;
}

/** A candidate of a result: an entry (row, key, position in table order) and its sort values. */
export interface Ranked {
  readonly entry: Entry;
  readonly vals: readonly Json[];
}

/** The ranked form of `entry` for `q`. */
export function rankEntry(q: CompiledQuery, entry: Entry): Ranked {
  const vals: Json[] = [];
  for (const k of q.sort) vals.push(sortValue(cell(entry.row, k.field), k.type));
  // a copy: the view updates its entries in place
  return { entry: { key: entry.key, row: entry.row, ord: entry.ord }, vals };
}

function compareJson(a: Json, b: Json): number {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    return compareStrings(JSON.stringify(a), JSON.stringify(b));
  }
  return compareSortValues(a, b);
}

/** The result order of `q`: its sort keys, then table order. */
export function compareRanked(q: CompiledQuery, a: Ranked, b: Ranked): number {
  for (let i = 0; i < q.sort.length; i++) {
    const d = compareJson(a.vals[i] as Json, b.vals[i] as Json);
    if (d !== 0) return d * (q.sort[i] as SortField).sign;
  }
  return a.entry.ord - b.entry.ord;
}

/** How a query is run: a scan of the table, or ranges of one index (in result order or not). */
interface Plan {
  index: SortedIndex | undefined;
  ranges: [number, number][];
  /** The ranges, read in order (descending: by groups of equal values), give the result order. */
  ordered: boolean;
  desc: boolean;
  cost: number;
}

function planFor(q: CompiledQuery, index: SortedIndex, k: number): Plan | undefined {
  const fields = index.fields;
  const prefix: Json[] = [];
  const pinned = new Set<string>();
  for (const f of fields) {
    const eq = q.conditions.find((c) => c.field === f.name && c.op === '==');
    if (eq === undefined) break;
    prefix.push(sortValue(eq.values[0] as Json, f.type));
    pinned.add(f.name);
  }
  const p = prefix.length;
  const next = fields[p];
  const inC = next && q.conditions.find((c) => c.field === next.name && c.op === 'in');
  const lower = next && q.conditions.find((c) => c.field === next.name && (c.op === '>' || c.op === '>='));
  const upper = next && q.conditions.find((c) => c.field === next.name && (c.op === '<' || c.op === '<='));
  const inVals =
    next === undefined || inC === undefined
      ? undefined
      : [...new Set(inC.values.map((v) => sortValue(v, next.type)))].sort(compareSortValues);
  const narrowed = p > 0 || inC !== undefined || lower !== undefined || upper !== undefined;
  const multi = inVals !== undefined && inVals.length > 1;
  // order: the index fields after the pinned prefix must be exactly the sort keys (pinned ones left
  // out), all in one direction; with no sort keys, a fully pinned prefix reads in table order
  const sortLeft = q.sort.filter((s) => !pinned.has(s.field));
  const rest = fields.slice(p);
  let ordered = false;
  let desc = false;
  if (!multi) {
    if (sortLeft.length === 0) ordered = rest.length === 0;
    else if (
      sortLeft.length === rest.length &&
      sortLeft.every((s, i) => s.field === rest[i]?.name && s.sign === (sortLeft[0] as SortField).sign)
    ) {
      ordered = true;
      desc = (sortLeft[0] as SortField).sign < 0;
    }
  }
  // decided from the query and the index's fields alone: an index that cannot help is not read
  // (a lazy index is built only when a query can use it)
  if (!narrowed && !ordered) return undefined;
  let ranges: [number, number][] = [[index.bound(prefix, false), index.bound(prefix, true)]];
  if (next !== undefined) {
    if (inVals !== undefined) {
      ranges = inVals.map((v) => [index.bound([...prefix, v], false), index.bound([...prefix, v], true)]);
    } else if (lower !== undefined || upper !== undefined) {
      const range = ranges[0] as [number, number];
      // ranges never match null
      let lo = Math.max(range[0], index.bound([...prefix, null], true));
      let hi = range[1];
      for (const c of [lower, upper]) {
        if (c === undefined) continue;
        const x = c.values[0] as Json;
        if (x === null) {
          hi = lo;
          continue;
        }
        const v = sortValue(x, next.type);
        if (c === lower) lo = Math.max(lo, index.bound([...prefix, v], c.op === '>'));
        else hi = Math.min(hi, index.bound([...prefix, v], c.op === '<='));
      }
      ranges = [[lo, Math.max(lo, hi)]];
    }
  }
  const count = ranges.reduce((n, [lo, hi]) => n + (hi - lo), 0);
  const needsSort = q.sort.length > 0 || !ordered;
  // rows read, plus a quarter for sorting what a plan does not read in order
  const bounded = Number.isFinite(k) ? Math.min(count, 2 * k) : count;
  const cost = ordered ? bounded : needsSort ? 1.25 * count : count;
  return { index, ranges, ordered, desc, cost };
}

function choosePlan(layer: ReadLayer, q: CompiledQuery, k: number): Plan {
  const n = layer.size(q.spec.table);
  let best: Plan = {
    index: undefined,
    ranges: [],
    ordered: false,
    desc: false,
    cost: q.sort.length > 0 ? 1.25 * n : n,
  };
  for (const index of layer.indexes?.(q.spec.table) ?? []) {
    const plan = planFor(q, index, k);
    if (plan !== undefined && plan.cost <= best.cost) best = plan;
  }
  return best;
}

/** The positions of an index plan's ranges in read order. */
function* positions(plan: Plan): Iterable<number> {
  const index = plan.index as SortedIndex;
  if (!plan.desc) {
    for (const [lo, hi] of plan.ranges) for (let i = lo; i < hi; i++) yield i;
    return;
  }
  // descending values, but rows with equal values in table order: read groups backwards
  for (let r = plan.ranges.length - 1; r >= 0; r--) {
    const [lo, hi] = plan.ranges[r] as [number, number];
    let end = hi;
    while (end > lo) {
      // the first entry with the same values as the last one (binary search)
      const start = Math.max(lo, index.bound(index.valuesOf(index.at(end - 1).row), false));
      for (let i = start; i < end; i++) yield i;
      end = start;
    }
  }
}

/** Where a result window ends: only candidates ranked after it are wanted. */
export type After = Ranked | undefined;

/** What {@link collect} found: the first `k` matches after `after`, in result order. */
export interface Collected {
  ranked: Ranked[];
  /** How the rows were found. */
  via: 'scan' | 'index' | 'primaryKey';
  /** The index used (its field names), or `null` for a scan of the table. */
  index: string[] | null;
  /** Rows read (index entries or table rows). */
  touched: number;
}

/** The row a one-field primary key pinned with `==` names (datetimes compare by instant: not those). */
function primaryKeyPin(
  layer: ReadLayer,
  q: CompiledQuery,
): { field: string; entry: Entry | undefined } | undefined {
  const { schema, spec } = q;
  if (schema.primaryKey.length !== 1) return undefined;
  const pk = schema.primaryKey[0] as string;
  if (schema.fields.find((f) => f.name === pk)?.type === 'datetime') return undefined;
  const pin = spec.where.find((c) => c.field === pk && c.op === '==');
  if (pin === undefined || pin.value === null || pin.value === undefined) return undefined;
  const key = keyOf(schema, pin.value as Json, spec.table);
  const row = layer.getRow(spec.table, key);
  if (row === undefined) return { field: pk, entry: undefined };
  const ord = (layer as { ordOf?: (t: string, k: string) => number | undefined }).ordOf?.call(
    layer,
    spec.table,
    key,
  );
  return { field: pk, entry: { key, row, ord: ord ?? 0 } };
}

function entriesOf(layer: ReadLayer, table: string): Iterable<Entry> {
  const list = (layer as { entryList?: (t: string) => Iterable<Entry> }).entryList;
  if (list !== undefined) return list.call(layer, table);
  return (function* () {
    let ord = 0;
    for (const [key, row] of layer.entries(table)) yield { key, row, ord: ord++ };
  })();
}

/**
 * The first `k` rows matching `q` that rank after `after` (all when `k` is infinite), in result
 * order, through the cheapest plan (an index when one narrows the rows or gives the order).
 */
export function collect(layer: ReadLayer, q: CompiledQuery, k: number, after?: After): Collected {
  const out: Ranked[] = [];
  if (k <= 0) return { ranked: out, via: 'scan', index: null, touched: 0 };
  const pinned = primaryKeyPin(layer, q);
  if (pinned !== undefined) {
    const r = pinned.entry === undefined ? undefined : rankEntry(q, pinned.entry);
    if (r !== undefined && matches(q, r.entry.row) && (after === undefined || compareRanked(q, r, after) > 0))
      out.push(r);
    return {
      ranked: out,
      via: 'primaryKey',
      index: [pinned.field],
      touched: pinned.entry === undefined ? 0 : 1,
    };
  }
  const plan = choosePlan(layer, q, k);
  let touched = 0;
  const index = plan.index === undefined ? null : plan.index.names;
  const via = plan.index === undefined ? 'scan' : 'index';
  if (plan.index !== undefined && plan.ordered) {
    for (const i of positions(plan)) {
      touched++;
      const entry = plan.index.at(i);
      if (!matches(q, entry.row)) continue;
      const r = rankEntry(q, entry);
      if (after !== undefined && compareRanked(q, r, after) <= 0) continue;
      out.push(r);
      if (out.length >= k) break;
    }
    return { ranked: out, via, index, touched };
  }
  const source: Iterable<Entry> =
    plan.index === undefined
      ? entriesOf(layer, q.spec.table)
      : (function* (idx: SortedIndex) {
          for (const [lo, hi] of plan.ranges) for (let i = lo; i < hi; i++) yield idx.at(i);
        })(plan.index);
  // unsorted table scan: table order is result order, stop early
  const inOrder = plan.index === undefined && q.sort.length === 0;
  // a small window keeps the k best in a sorted buffer; otherwise everything is sorted once
  const bounded = k < 1024;
  for (const entry of source) {
    touched++;
    if (!matches(q, entry.row)) continue;
    const r = rankEntry(q, entry);
    if (after !== undefined && compareRanked(q, r, after) <= 0) continue;
    if (inOrder) {
      out.push(r);
      if (out.length >= k) break;
      continue;
    }
    if (!bounded) {
      out.push(r);
      continue;
    }
    if (out.length >= k) {
      // top-k: keep the k best
      if (compareRanked(q, r, out[out.length - 1] as Ranked) >= 0) continue;
      out.pop();
    }
    insertSorted(q, out, r);
  }
  if (!bounded && !inOrder) {
    out.sort((a, b) => compareRanked(q, a, b));
    if (out.length > k) out.length = k;
  }
  return { ranked: out, via, index, touched };
}

/** Inserts `r` into the sorted `list` (binary search). */
export function insertSorted(q: CompiledQuery, list: Ranked[], r: Ranked): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareRanked(q, list[mid] as Ranked, r) < 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, r);
  return lo;
}

/**
 * What a query does: the index it reads (field names; `null` for a scan of the table), how many
 * rows (index entries or table rows) it reads, and how many it returns.
 *
 * @example
 * ```ts
 * const plan: QueryExplain = await db.table('items').query().where('status', '==', 'open').explain();
 * // { via: 'index', index: ['status'], touched: 3120, rows: 3120 }
 * ```
 */
export interface QueryExplain {
  /** How the rows were found: a scan of the table, an index, or a lookup by primary key. */
  via: 'scan' | 'index' | 'primaryKey';
  /** The fields of the index used (of the primary key for a lookup), or `null` for a scan. */
  index: string[] | null;
  touched: number;
  rows: number;
}

/** The rows matching `spec`, in order, with how they were found (see {@link runQuery}). */
export function explainQuery(layer: ReadLayer, spec: QuerySpec): { rows: Row[]; explain: QueryExplain } {
  const q = compileQuery(layer, spec);
  if (q === undefined) return { rows: [], explain: { via: 'scan', index: null, touched: 0, rows: 0 } };
  const k = spec.limit === undefined ? Number.POSITIVE_INFINITY : spec.offset + spec.limit;
  const found = collect(layer, q, k);
  const rows: Row[] = [];
  for (let i = spec.offset; i < found.ranked.length; i++) rows.push((found.ranked[i] as Ranked).entry.row);
  return { rows, explain: { via: found.via, index: found.index, touched: found.touched, rows: rows.length } };
}

/**
 * The rows matching `spec`, in order. Throws {@link ValidationError} for an unknown field or operator
 * or a value that does not fit the field's type.
 *
 * @example
 * ```ts
 * runQuery(view, { table: 'projects', where: [{ field: 'status', op: '==', value: 'open' }],
 *                  orderBy: [{ field: 'title', dir: 'asc' }], offset: 0, limit: 10 });
 * ```
 */
export function runQuery(layer: ReadLayer, spec: QuerySpec): Row[] {
  return explainQuery(layer, spec).rows;
}

/** True when two results hold the same row objects in the same order (rows compared by reference). */
export function sameRows(a: readonly Row[], b: readonly Row[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
