/**
 * Per-schema lookups (field by name, field index, key fields), computed once per schema object.
 * Schemas are treated as immutable values throughout userdb: a changed schema is a new object.
 */
import type { FieldDef, Json, TableSchema } from './types.js';

/** Precomputed lookups for one table schema. */
export interface SchemaInfo {
  /** Field definition by name. */
  readonly byName: ReadonlyMap<string, FieldDef>;
  /** Position of each field in compact rows. */
  readonly index: ReadonlyMap<string, number>;
  /** Positions of the primary key fields, in `primaryKey` order (-1 for a name that is not a field). */
  readonly keyIndexes: readonly number[];
}

const cache = new WeakMap<TableSchema, SchemaInfo>();

/** The lookups of `schema` (cached by object identity). */
export function schemaInfo(schema: TableSchema): SchemaInfo {
  let info = cache.get(schema);
  if (info === undefined) {
    const byName = new Map<string, FieldDef>();
    const index = new Map<string, number>();
    schema.fields.forEach((f, i) => {
      byName.set(f.name, f);
      index.set(f.name, i);
    });
    info = { byName, index, keyIndexes: schema.primaryKey.map((n) => index.get(n) ?? -1) };
    cache.set(schema, info);
  }
  return info;
}

/**
 * The row key of a compact row of a valid table (no checks; see `rowKey` for the encoding).
 */
export function keyOfArray(info: SchemaInfo, values: readonly Json[]): string {
  const idx = info.keyIndexes;
  if (idx.length === 1) {
    const v = values[idx[0] as number] ?? null;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  return JSON.stringify(idx.map((i) => values[i] ?? null));
}
