/**
 * JSON Pointer (RFC 6901) segments and the paths of keyed patches.
 *
 * Keyed paths (the only ones the keyed form accepts):
 * - `/tables/{t}`                    a table
 * - `/tables/{t}/schema`             its schema
 * - `/tables/{t}/schema/fields/-`    "append a field"
 * - `/tables/{t}/rows/{k}`           a row, by row key
 * - `/tables/{t}/rows/{k}/{f}`       a cell, by row key and field name
 */
import { UserDbError } from '../errors.js';

/**
 * Escapes one pointer segment (`~` → `~0`, `/` → `~1`).
 *
 * @example
 * ```ts
 * escapePointer('a/b~c'); // 'a~1b~0c'
 * ```
 */
export function escapePointer(segment: string): string {
  if (!segment.includes('~') && !segment.includes('/')) return segment;
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Unescapes one pointer segment (`~1` → `/`, `~0` → `~`). Throws `bad_patch` on a `~` not followed by 0 or 1.
 *
 * @example
 * ```ts
 * unescapePointer('a~1b~0c'); // 'a/b~c'
 * ```
 */
export function unescapePointer(segment: string): string {
  if (!segment.includes('~')) return segment;
  if (/~(?![01])/.test(segment)) {
    throw new UserDbError('bad_patch', `invalid JSON pointer escape in segment ${JSON.stringify(segment)}`);
  }
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * Splits a JSON pointer into unescaped segments. `''` (the root) gives `[]`.
 * Throws `bad_patch` when the pointer does not start with `/`.
 *
 * @example
 * ```ts
 * splitPointer('/tables/a~1b/rows'); // ['tables', 'a/b', 'rows']
 * ```
 */
export function splitPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) {
    throw new UserDbError('bad_patch', `JSON pointer must start with '/': ${JSON.stringify(pointer)}`);
  }
  return pointer.slice(1).split('/').map(unescapePointer);
}

/**
 * Builders for keyed patch paths; every name is escaped.
 *
 * @example
 * ```ts
 * keyedPath.cell('projects', 'p/1', 'title'); // '/tables/projects/rows/p~11/title'
 * ```
 */
export const keyedPath = {
  table: (t: string): string => `/tables/${escapePointer(t)}`,
  schema: (t: string): string => `/tables/${escapePointer(t)}/schema`,
  fields: (t: string): string => `/tables/${escapePointer(t)}/schema/fields/-`,
  row: (t: string, k: string): string => `/tables/${escapePointer(t)}/rows/${escapePointer(k)}`,
  cell: (t: string, k: string, f: string): string =>
    `/tables/${escapePointer(t)}/rows/${escapePointer(k)}/${escapePointer(f)}`,
} as const;

/**
 * What a keyed path addresses.
 *
 * @example
 * ```ts
 * const target: KeyedTarget = parseKeyedPath(op.path).target; // 'cell'
 * ```
 */
export type KeyedTarget = 'table' | 'schema' | 'fields' | 'row' | 'cell';

/**
 * A parsed keyed path (names unescaped).
 *
 * @example
 * ```ts
 * const { table, row, field }: KeyedPathInfo = parseKeyedPath('/tables/t/rows/k/f');
 * ```
 */
export interface KeyedPathInfo {
  target: KeyedTarget;
  table: string;
  row?: string;
  field?: string;
}

/**
 * Parses a keyed path (see the module docs). Throws `UserDbError` code `bad_patch` for any other path.
 *
 * @example
 * ```ts
 * parseKeyedPath('/tables/projects/rows/p_1/title');
 * // { target: 'cell', table: 'projects', row: 'p_1', field: 'title' }
 * ```
 */
export function parseKeyedPath(path: string): KeyedPathInfo {
  const bad = (): UserDbError =>
    new UserDbError('bad_patch', `not a keyed userdb path: ${JSON.stringify(path)}`);
  if (typeof path !== 'string' || !path.startsWith('/tables/')) throw bad();
  const s = splitPointer(path);
  const table = s[1];
  if (table === undefined) throw bad();
  if (s.length === 2) return { target: 'table', table };
  if (s[2] === 'schema') {
    if (s.length === 3) return { target: 'schema', table };
    if (s.length === 5 && s[3] === 'fields' && s[4] === '-') return { target: 'fields', table };
    throw bad();
  }
  if (s[2] === 'rows') {
    const row = s[3];
    if (row === undefined) throw bad();
    if (s.length === 4) return { target: 'row', table, row };
    const field = s[4];
    if (s.length === 5 && field !== undefined) return { target: 'cell', table, row, field };
  }
  throw bad();
}
