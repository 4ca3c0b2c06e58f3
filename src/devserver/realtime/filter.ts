/**
 * Realtime `postgres_changes` filters: `column=op.value` with op one of eq, neq, lt,
 * lte, gt, gte, in (`in.(a,b,c)`), compared with the column's type as Realtime does.
 *
 * @example
 * ```ts
 * const f = parseFilter('user_id=eq.3f1c…');
 * if (f.ok && matchesFilter(f.filter, record, columns)) deliver();
 * ```
 */

/** A parsed filter. */
export interface RealtimeFilter {
  column: string;
  op: 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte' | 'in';
  values: string[];
}

/** A column as listed in a change: name and Postgres type name (`pg_type.typname`). */
export interface ChangeColumn {
  name: string;
  type: string;
}

const OPS = new Set(['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in']);
const NUMERIC = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'oid']);

/** Splits `a=eq.1,b=in.(x,y)` on the commas outside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseOne(text: string): { ok: true; filter: RealtimeFilter } | { ok: false; message: string } {
  const match = /^([^=]+)=([a-z]+)\.(.*)$/s.exec(text.trim());
  if (match === null)
    return { ok: false, message: `Error parsing \`filter\` params: ${JSON.stringify(text)}` };
  const [, column, op, rest] = match as unknown as [string, string, string, string];
  if (!OPS.has(op))
    return { ok: false, message: `Error parsing \`filter\` params: unsupported operator ${op}` };
  if (op === 'in') {
    const inner = /^\((.*)\)$/s.exec(rest);
    if (inner === null) return { ok: false, message: 'Error parsing `filter` params: `in` expects (a,b,c)' };
    const values = (inner[1] ?? '')
      .split(',')
      .map((v) => v.trim().replace(/^"(.*)"$/s, '$1'))
      .filter((v) => v !== '');
    return { ok: true, filter: { column: column.trim(), op: 'in', values } };
  }
  return { ok: true, filter: { column: column.trim(), op: op as RealtimeFilter['op'], values: [rest] } };
}

/**
 * Parses a filter string; several filters joined by commas must all pass, as in Realtime.
 *
 * @example
 * ```ts
 * parseFilter('id=in.(1,2,3)'); // { ok: true, filters: [{ column: 'id', op: 'in', values: ['1','2','3'] }] }
 * parseFilter('id=gt.0,id=lt.100'); // two filters, both must pass
 * ```
 */
export function parseFilter(
  text: string,
): { ok: true; filters: RealtimeFilter[] } | { ok: false; message: string } {
  const filters: RealtimeFilter[] = [];
  for (const part of splitTopLevel(text)) {
    const parsed = parseOne(part);
    if (!parsed.ok) return parsed;
    filters.push(parsed.filter);
  }
  return { ok: true, filters };
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function compare(type: string | undefined, left: unknown, right: string): number {
  if (type !== undefined && NUMERIC.has(type)) {
    const a = Number(left);
    const b = Number(right);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (type === 'bool') {
    const a = left === true || left === 't' || left === 'true';
    const b = right === 't' || right === 'true';
    return a === b ? 0 : a ? 1 : -1;
  }
  const a = type === 'uuid' ? text(left).toLowerCase() : text(left);
  const b = type === 'uuid' ? right.toLowerCase() : right;
  return a < b ? -1 : a > b ? 1 : 0;
}

function matchesOne(
  filter: RealtimeFilter,
  record: Readonly<Record<string, unknown>> | null | undefined,
  columns: readonly ChangeColumn[],
): boolean {
  if (record == null || !Object.hasOwn(record, filter.column)) return false;
  const value = record[filter.column];
  if (value === null || value === undefined) return false;
  const type = columns.find((c) => c.name === filter.column)?.type;
  const first = filter.values[0] ?? '';
  switch (filter.op) {
    case 'eq':
      return compare(type, value, first) === 0;
    case 'neq':
      return compare(type, value, first) !== 0;
    case 'lt':
      return compare(type, value, first) < 0;
    case 'lte':
      return compare(type, value, first) <= 0;
    case 'gt':
      return compare(type, value, first) > 0;
    case 'gte':
      return compare(type, value, first) >= 0;
    case 'in':
      return filter.values.some((v) => compare(type, value, v) === 0);
  }
}

/**
 * Whether `record` passes every filter. A column missing from the record (or null) never
 * passes, as in Realtime.
 *
 * @example
 * ```ts
 * matchesFilter(filters, { user_id: 'abc' }, [{ name: 'user_id', type: 'uuid' }]);
 * ```
 */
export function matchesFilter(
  filters: readonly RealtimeFilter[],
  record: Readonly<Record<string, unknown>> | null | undefined,
  columns: readonly ChangeColumn[],
): boolean {
  return filters.every((f) => matchesOne(f, record, columns));
}
