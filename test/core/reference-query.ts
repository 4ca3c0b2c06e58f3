/**
 * The reference for the query engine's property tests: userdb's query evaluation as it was before
 * indexes and incremental live results (a scan of the table, a full stable sort, then offset/limit),
 * kept verbatim apart from its imports and exports.
 *
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
} from '../../src/doc/index.js';
import { ValidationError } from '../../src/errors.js';
import type { ReadLayer } from '../../src/query/view.js';

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

function rank(v: Json): number {
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
    return { field: c.field, type, test: (v) => values.some((x) => equalValues(v, x, type)) };
  }
  const x = encodeValue(type, c.value, where);
  switch (c.op) {
    case '==':
      return { field: c.field, type, test: (v) => equalValues(v, x, type) };
    case '!=':
      return { field: c.field, type, test: (v) => !equalValues(v, x, type) };
    default: {
      const op = c.op;
      return {
        field: c.field,
        type,
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

/** Candidate rows: a direct lookup when the query pins a one-field primary key with `==`, else a scan. */
function candidates(layer: ReadLayer, spec: QuerySpec, schema: TableSchema): Iterable<Row> {
  const pk = schema.primaryKey.length === 1 ? (schema.primaryKey[0] as string) : undefined;
  // datetimes compare by instant, which a lookup by the exact key string would not do
  if (pk !== undefined && schema.fields.find((f) => f.name === pk)?.type !== 'datetime') {
    const pin = spec.where.find((c) => c.field === pk && c.op === '==');
    if (pin !== undefined && pin.value !== null && pin.value !== undefined) {
      const row = layer.getRow(spec.table, keyOf(schema, pin.value as Json, spec.table));
      return row === undefined ? [] : [row];
    }
  }
  return layer.rows(spec.table);
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
export function referenceQuery(layer: ReadLayer, spec: QuerySpec): Row[] {
  const schema = layer.schemaOf(spec.table);
  if (schema === undefined) return [];
  const conditions = spec.where.map((c) => prepare(c, schema, spec.table));
  const sort = spec.orderBy.map((k) => ({
    field: k.field,
    sign: k.dir === 'desc' ? -1 : 1,
    type: fieldType(schema, spec.table, k.field),
  }));
  const unsorted = sort.length === 0;
  const stopAt = unsorted && spec.limit !== undefined ? spec.offset + spec.limit : Number.POSITIVE_INFINITY;
  const out: Row[] = [];
  for (const row of candidates(layer, spec, schema)) {
    if (conditions.every((c) => c.test(cell(row, c.field)))) {
      out.push(row);
      if (out.length >= stopAt) break;
    }
  }
  if (!unsorted) {
    out.sort((a, b) => {
      for (const k of sort) {
        const d = compareValues(cell(a, k.field), cell(b, k.field), k.type);
        if (d !== 0) return d * k.sign;
      }
      return 0;
    });
  }
  const end = spec.limit === undefined ? undefined : spec.offset + spec.limit;
  return spec.offset === 0 && end === undefined ? out : out.slice(spec.offset, end);
}

/** True when two results hold the same row objects in the same order (rows compared by reference). */
export function sameRows(a: readonly Row[], b: readonly Row[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
