/**
 * Converters between the compact form (rows as arrays) and the keyed form (rows by key, fields by name).
 */
import { hasOwn, setOwn } from './json.js';
import { keyFields } from './keys.js';
import { keyOfArray, schemaInfo } from './schema-info.js';
import type { CompactDoc, CompactTable, Json, KeyedDoc, KeyedTable, Row, TableSchema } from './types.js';

/** The keyed row of a compact row array (every schema field present). */
export function rowFromArray(schema: TableSchema, values: readonly Json[]): Row {
  const row: Row = {};
  const fields = schema.fields;
  for (let j = 0; j < fields.length; j++)
    setOwn(row, (fields[j] as { name: string }).name, values[j] ?? null);
  return row;
}

/** The compact row array of a keyed row (absent fields become `null`). */
export function rowToArray(schema: TableSchema, row: Row): Json[] {
  return schema.fields.map((f) => (hasOwn(row, f.name) ? (row[f.name] as Json) : null));
}

/**
 * The keyed form of one compact table.
 *
 * @example
 * ```ts
 * tableToKeyed('projects', doc.tables.projects).rows['p_1'].title;
 * ```
 */
export function tableToKeyed(name: string, table: CompactTable): KeyedTable {
  keyFields(table.schema, name);
  const info = schemaInfo(table.schema);
  const rows: Record<string, Row> = {};
  for (const values of table.rows) setOwn(rows, keyOfArray(info, values), rowFromArray(table.schema, values));
  return { schema: table.schema, rows };
}

/**
 * The keyed form of a (valid) compact document: rows addressed by row key (see `rowKey`), every keyed row
 * holding every schema field (null when absent). Validate untrusted input with `parseCompactDoc` first.
 *
 * @example
 * ```ts
 * const keyed = toKeyed({ version: 1, tables: { projects } });
 * keyed.tables.projects.rows['p_1']; // { id: 'p_1', title: 'First project', … }
 * ```
 */
export function toKeyed(doc: CompactDoc): KeyedDoc {
  const tables: Record<string, KeyedTable> = {};
  for (const name of Object.keys(doc.tables))
    setOwn(tables, name, tableToKeyed(name, doc.tables[name] as CompactTable));
  return { version: 1, tables };
}

/**
 * The compact form of one keyed table; row order follows the key order of `table.rows`.
 *
 * @example
 * ```ts
 * tableToCompact(keyed.tables.projects).rows; // [['p_1', 'First project', …]]
 * ```
 */
export function tableToCompact(table: KeyedTable): CompactTable {
  const rows: Json[][] = [];
  for (const key of Object.keys(table.rows)) rows.push(rowToArray(table.schema, table.rows[key] as Row));
  return { schema: table.schema, rows };
}

/**
 * The compact form of a keyed document (row order: the key order of each `rows` object; row order
 * carries no meaning in userdb, see {@link canonicalCompact}).
 *
 * @example
 * ```ts
 * const compact = toCompact(keyed); // the seed format, ready for the server
 * ```
 */
export function toCompact(doc: KeyedDoc): CompactDoc {
  const tables: Record<string, CompactTable> = {};
  for (const name of Object.keys(doc.tables))
    setOwn(tables, name, tableToCompact(doc.tables[name] as KeyedTable));
  return { version: 1, tables };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The canonical compact form: tables in name order, rows sorted by row key (code-unit order).
 * Row order carries no meaning in userdb, so compare documents through this form.
 *
 * @example
 * ```ts
 * expect(canonicalCompact(a)).toEqual(canonicalCompact(b));
 * ```
 */
export function canonicalCompact(doc: CompactDoc): CompactDoc {
  const tables: Record<string, CompactTable> = {};
  for (const name of Object.keys(doc.tables).sort(compareStrings)) {
    const table = doc.tables[name] as CompactTable;
    const info = schemaInfo(table.schema);
    const keyed = table.rows.map((values) => ({ key: keyOfArray(info, values), values }));
    keyed.sort((a, b) => compareStrings(a.key, b.key));
    setOwn(tables, name, { schema: table.schema, rows: keyed.map((r) => r.values) });
  }
  return { version: 1, tables };
}
