/**
 * Plain-JSON helpers shared by the document module: prototype-safe own-property access,
 * a deep "is this JSON?" check, and structural equality.
 *
 * Row keys, table names and field names are user data: `__proto__`, `constructor` and friends
 * are ordinary names here. Reads go through {@link hasOwn}, writes through {@link setOwn}.
 */
import type { Json } from './types.js';

/** `Object.hasOwn`, typed for records. */
export function hasOwn(obj: object, key: string): boolean {
  return Object.hasOwn(obj, key);
}

/** The own property `key` of `obj`, or `undefined` (never an inherited one such as `Object.prototype`). */
export function getOwn<T>(obj: Readonly<Record<string, T>>, key: string): T | undefined {
  return hasOwn(obj, key) ? obj[key] : undefined;
}

/** Sets an own enumerable property, even when `key` is `__proto__` (which plain assignment would not). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/** True for `{}`-literal-like objects (prototype `Object.prototype` or `null`), false for arrays, Dates, Maps, class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describeKind(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value === 'number') return String(value);
  if (value instanceof Date) return 'a Date object';
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== ''
    ? `a ${ctor.name} instance`
    : 'a non-plain object';
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
}

// U+0000, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is exactly what is looked for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why PostgreSQL could not store `text` in a `jsonb` document (it holds U+0000, which `jsonb`
 * rejects with 22P05, or a lone UTF-16 surrogate, which is not Unicode and fails with 22P02), or
 * `undefined` when it can.
 *
 * @example
 * ```ts
 * textIssue('a\u0000b'); // 'the character U+0000 at index 1'
 * textIssue('ok');        // undefined
 * ```
 */
export function textIssue(text: string): string | undefined {
  const m = UNSTORABLE.exec(text);
  if (m === null) return undefined;
  const code = (m[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
  return code === '0000'
    ? `the character U+0000 at index ${m.index}`
    : `a lone surrogate U+${code} at index ${m.index}`;
}

/**
 * Why PostgreSQL could not store the JSON `value`: the first string or object key holding text it
 * rejects (see {@link textIssue}), with its path; `undefined` when it can. Checked at write time, so
 * that such a value never reaches the outbox.
 *
 * @example
 * ```ts
 * storableIssue({ a: ['ok', 'b\u0000'] }); // 'the character U+0000 at index 1 at .a[1]'
 * ```
 */
export function storableIssue(value: unknown): string | undefined {
  const path: (string | number)[] = [];
  const at = (): string => (path.length > 0 ? ` at ${formatPath(path)}` : '');
  const visit = (v: unknown): string | undefined => {
    if (typeof v === 'string') {
      const issue = textIssue(v);
      return issue === undefined ? undefined : `${issue}${at()}`;
    }
    if (typeof v !== 'object' || v === null) return undefined;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        const issue = visit(v[i]);
        path.pop();
        if (issue !== undefined) return issue;
      }
      return undefined;
    }
    for (const key of Object.keys(v)) {
      const keyIssue = textIssue(key);
      if (keyIssue !== undefined) return `${keyIssue} in the key ${JSON.stringify(key)}${at()}`;
      path.push(key);
      const issue = visit((v as Record<string, unknown>)[key]);
      path.pop();
      if (issue !== undefined) return issue;
    }
    return undefined;
  };
  return visit(value);
}

/**
 * Returns why `value` is not plain JSON (e.g. `"undefined at [2]"`), or `undefined` when it is.
 * Rejects `undefined`, functions, symbols, bigints, non-finite numbers, sparse arrays,
 * non-plain objects (Date, Map, class instances), symbol-keyed properties and cycles.
 */
export function jsonIssue(value: unknown): string | undefined {
  const path: (string | number)[] = [];
  const stack = new Set<object>();
  const visit = (v: unknown): string | undefined => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return undefined;
      case 'number':
        return Number.isFinite(v) ? undefined : `${describeKind(v)}${at()}`;
      case 'object': {
        if (v === null) return undefined;
        if (stack.has(v)) return `a circular reference${at()}`;
        if (Array.isArray(v)) {
          stack.add(v);
          for (let i = 0; i < v.length; i++) {
            path.push(i);
            const issue = i in v ? visit(v[i]) : `undefined (a hole)${at()}`;
            path.pop();
            if (issue !== undefined) return issue;
          }
          stack.delete(v);
          return undefined;
        }
        if (!isPlainObject(v)) return `${describeKind(v)}${at()}`;
        if (Object.getOwnPropertySymbols(v).length > 0) return `a symbol-keyed property${at()}`;
        stack.add(v);
        for (const key of Object.keys(v)) {
          path.push(key);
          const issue = visit(v[key]);
          path.pop();
          if (issue !== undefined) return issue;
        }
        stack.delete(v);
        return undefined;
      }
      default:
        return `${describeKind(v)}${at()}`;
    }
  };
  const at = (): string => (path.length > 0 ? ` at ${formatPath(path)}` : '');
  return visit(value);
}

/**
 * True when `value` is plain JSON (see {@link jsonIssue}).
 *
 * @example
 * ```ts
 * isJson({ a: [1, null] }); // true
 * isJson([undefined]);      // false
 * ```
 */
export function isJson(value: unknown): value is Json {
  return jsonIssue(value) === undefined;
}

/**
 * Structural JSON equality (RFC 6902 `test` semantics: object member order is irrelevant, array order is not).
 *
 * @example
 * ```ts
 * jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 }); // true
 * jsonEqual([1, 2], [2, 1]);                 // false
 * ```
 */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
  }
  return true;
}

/**
 * The message of a userdb error without the "(table …, row …, field …)" suffix its constructor
 * appends, so the error can be wrapped with the location given once.
 */
export function reasonOf(
  e: Error & { table?: string | undefined; key?: string | undefined; field?: string | undefined },
): string {
  const where: string[] = [];
  if (e.table !== undefined) where.push(`table "${e.table}"`);
  if (e.key !== undefined) where.push(`row "${e.key}"`);
  if (e.field !== undefined) where.push(`field "${e.field}"`);
  const suffix = where.length > 0 ? ` (${where.join(', ')})` : '';
  return suffix !== '' && e.message.endsWith(suffix) ? e.message.slice(0, -suffix.length) : e.message;
}
