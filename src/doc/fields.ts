/**
 * Field types (Frictionless names) and their JSON encodings.
 *
 * | type       | JSON encoding                                                        |
 * |------------|----------------------------------------------------------------------|
 * | `string`   | any string (no length limit)                                         |
 * | `number`   | a finite number (NaN and ±Infinity rejected)                         |
 * | `integer`  | a safe integer (`Number.isSafeInteger`)                              |
 * | `boolean`  | `true` / `false`                                                     |
 * | `date`     | `YYYY-MM-DD` (a real calendar date)                                  |
 * | `time`     | `HH:MM:SS` with optional fraction (`HH:MM:SS.fff…`), no offset        |
 * | `datetime` | RFC 3339 / ISO 8601: `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM)`             |
 * | `object`   | a plain JSON object (deeply JSON)                                    |
 * | `array`    | a JSON array (deeply JSON)                                           |
 * | `any`      | any JSON value                                                       |
 *
 * `null` is a valid value of every type: whether a field may be null is decided above the
 * document (by the typed schema); primary-key fields are always non-null.
 */
import { ValidationError } from '../errors.js';
import { isPlainObject, jsonIssue, storableIssue } from './json.js';
import type { FieldType, Json } from './types.js';

/**
 * Every supported field type, in documentation order.
 *
 * @example
 * ```ts
 * FIELD_TYPES.includes('datetime'); // true
 * ```
 */
export const FIELD_TYPES: readonly FieldType[] = Object.freeze([
  'string',
  'number',
  'integer',
  'boolean',
  'date',
  'time',
  'datetime',
  'object',
  'array',
  'any',
] as const);

const FIELD_TYPE_SET: ReadonlySet<string> = new Set(FIELD_TYPES);

/**
 * True when `type` is one of {@link FIELD_TYPES}.
 *
 * @example
 * ```ts
 * isFieldType('integer'); // true
 * isFieldType('uuid');    // false
 * ```
 */
export function isFieldType(type: unknown): type is FieldType {
  return typeof type === 'string' && FIELD_TYPE_SET.has(type);
}

/**
 * Where a value sits, for error messages.
 *
 * @example
 * ```ts
 * const where: ValueLocation = { table: 'projects', key: 'p_1', field: 'created_at' };
 * ```
 */
export interface ValueLocation {
  table?: string | undefined;
  key?: string | undefined;
  field?: string | undefined;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME_RE = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/;
const DATETIME_RE = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|[+-](\d{2}):(\d{2}))$/;

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function isDateString(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (m === null) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1) return false;
  const days = [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1] ?? 0;
  return d <= days;
}

function isTimeString(s: string): boolean {
  const m = TIME_RE.exec(s);
  return m !== null && Number(m[1]) <= 23 && Number(m[2]) <= 59 && Number(m[3]) <= 59;
}

function isDateTimeString(s: string): boolean {
  const m = DATETIME_RE.exec(s);
  if (m === null) return false;
  if (!isDateString(m[1] ?? '') || !isTimeString(m[2] ?? '')) return false;
  return m[3] === undefined || (Number(m[3]) <= 23 && Number(m[4]) <= 59);
}

/** Why `value` is not a valid encoded value of `type`, or `undefined` when it is. */
export function valueIssue(type: FieldType, value: unknown): string | undefined {
  if (value === null) return undefined;
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : `expected a string, got ${kindOf(value)}`;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
        ? undefined
        : `expected a finite number, got ${kindOf(value)}`;
    case 'integer':
      return Number.isSafeInteger(value) ? undefined : `expected a safe integer, got ${kindOf(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `expected a boolean, got ${kindOf(value)}`;
    case 'date':
      return typeof value === 'string' && isDateString(value)
        ? undefined
        : `expected a date 'YYYY-MM-DD', got ${kindOf(value)}`;
    case 'time':
      return typeof value === 'string' && isTimeString(value)
        ? undefined
        : `expected a time 'HH:MM:SS[.fff]', got ${kindOf(value)}`;
    case 'datetime':
      return typeof value === 'string' && isDateTimeString(value)
        ? undefined
        : `expected an ISO 8601 datetime 'YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)', got ${kindOf(value)}`;
    case 'object':
      if (!isPlainObject(value)) return `expected a plain JSON object, got ${kindOf(value)}`;
      return prefix(jsonIssue(value));
    case 'array':
      if (!Array.isArray(value)) return `expected a JSON array, got ${kindOf(value)}`;
      return prefix(jsonIssue(value));
    case 'any':
      return prefix(jsonIssue(value));
    default:
      return `unknown field type ${JSON.stringify(type)}`;
  }
}

function prefixStorable(issue: string | undefined): string | undefined {
  return issue === undefined ? undefined : `PostgreSQL cannot store ${issue}`;
}

function prefix(issue: string | undefined): string | undefined {
  return issue === undefined ? undefined : `not JSON: contains ${issue}`;
}

function kindOf(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') {
    return value.length > 40 ? `a string ${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date object';
  return isPlainObject(value) ? 'an object' : 'a non-plain object';
}

/**
 * True when `value` is already a valid JSON encoding of `type` (`null` is valid for every type).
 * A `Date` object is not (see {@link encodeValue}, which converts it).
 *
 * @example
 * ```ts
 * isValidValue('integer', 3);            // true
 * isValidValue('integer', 3.5);          // false
 * isValidValue('date', '2025-02-29');    // false (not a leap year)
 * isValidValue('datetime', null);        // true
 * ```
 */
export function isValidValue(type: FieldType, value: unknown): boolean {
  return valueIssue(type, value) === undefined;
}

/**
 * Encodes an application value as the JSON stored for `type`, or throws a {@link ValidationError}
 * naming `where` (table, row key, field).
 *
 * A `Date` is converted for `datetime` (`toISOString()`) and `date` (its UTC calendar date);
 * an invalid Date is rejected; `-0` becomes `0`; text PostgreSQL cannot store (U+0000, a lone
 * surrogate, in a string, nested, or in an object key) is rejected. Everything else must already be the encoding (see the module docs).
 *
 * @example
 * ```ts
 * encodeValue('datetime', new Date(0));             // '1970-01-01T00:00:00.000Z'
 * encodeValue('date', new Date('2025-10-14T23:00Z')); // '2025-10-14'
 * encodeValue('number', NaN, { table: 't', field: 'x' }); // throws ValidationError
 * ```
 */
export function encodeValue(type: FieldType, value: unknown, where: ValueLocation = {}): Json {
  let v = value;
  if (v instanceof Date && (type === 'datetime' || type === 'date')) {
    if (Number.isNaN(v.getTime())) {
      throw new ValidationError(`invalid value for ${type} field: an invalid Date`, where);
    }
    const iso = v.toISOString();
    v = type === 'date' ? iso.slice(0, iso.indexOf('T')) : iso;
  }
  const issue = valueIssue(type, v) ?? prefixStorable(storableIssue(v));
  if (issue !== undefined) throw new ValidationError(`invalid value for ${type} field: ${issue}`, where);
  // JSON (and the server) have no negative zero: store 0 so both sides hold the same value.
  return Object.is(v, -0) ? 0 : (v as Json);
}
