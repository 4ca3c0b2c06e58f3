/**
 * The two forms of one userdb document. Plain data only: no I/O, no classes.
 *
 * Compact form (wire + server, the seed format):
 *   { version: 1, tables: { name: { schema: { fields: [{name,type}], primaryKey: [...] }, rows: [[...], ...] } } }
 * Keyed form (in memory): rows addressed by row key (see rowKey) and fields by name.
 */

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Frictionless field types supported by userdb. */
export type FieldType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'date'
  | 'time'
  | 'datetime'
  | 'object'
  | 'array'
  | 'any';

/** One column of a table. */
export interface FieldDef {
  name: string;
  type: FieldType;
}

/** A table's schema: ordered fields and the primary key's field names. */
export interface TableSchema {
  fields: FieldDef[];
  primaryKey: string[];
}

/** A table in compact form: rows are arrays aligned to `schema.fields`. */
export interface CompactTable {
  schema: TableSchema;
  rows: Json[][];
}

/** The whole document in compact form (the seed format; what the server stores). */
export interface CompactDoc {
  version: 1;
  tables: Record<string, CompactTable>;
}

/** A row in keyed form: field name → value. */
export type Row = Record<string, Json>;

/** A table in keyed form: row key → row. */
export interface KeyedTable {
  schema: TableSchema;
  rows: Record<string, Row>;
}

/** The whole document in keyed form. */
export interface KeyedDoc {
  version: 1;
  tables: Record<string, KeyedTable>;
}

/** One RFC 6902 operation (the subset userdb emits). */
export type PatchOp =
  | { op: 'add'; path: string; value: Json }
  | { op: 'replace'; path: string; value: Json }
  | { op: 'remove'; path: string }
  | { op: 'test'; path: string; value: Json };
