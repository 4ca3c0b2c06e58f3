/**
 * Row keys: the one stable string that names a row in the keyed form and in keyed patch paths.
 *
 * Encoding (injective within a table, since every key field has one type and is non-null):
 * - one key field whose value is a string (`string`, `date`, `time`, `datetime`) → the string itself;
 * - one key field of another type (`integer`, `number`, `boolean`) → `JSON.stringify(value)`;
 * - a composite key → `JSON.stringify([v1, v2, …])` in `primaryKey` order.
 */
import { SchemaError, ValidationError } from '../errors.js';
import { encodeValue, valueIssue } from './fields.js';
import { getOwn } from './json.js';
import { schemaInfo } from './schema-info.js';
import type { FieldDef, FieldType, Json, Row, TableSchema } from './types.js';

/**
 * The field types a primary-key field may have.
 *
 * @example
 * ```ts
 * PK_FIELD_TYPES.includes('object'); // false
 * ```
 */
export const PK_FIELD_TYPES: readonly FieldType[] = Object.freeze([
  'string',
  'integer',
  'number',
  'boolean',
  'date',
  'time',
  'datetime',
] as const);

/** The key fields of `schema`; throws {@link SchemaError} when one is not a field or cannot be a key. */
export function keyFields(schema: TableSchema, table?: string): FieldDef[] {
  const { byName } = schemaInfo(schema);
  return schema.primaryKey.map((name) => {
    const def = byName.get(name);
    if (def === undefined)
      throw new SchemaError(`primary key field is not a field of the table`, { table, field: name });
    if (!PK_FIELD_TYPES.includes(def.type)) {
      throw new SchemaError(`primary key field has type ${def.type}, which cannot be a key`, {
        table,
        field: name,
      });
    }
    return def;
  });
}

/** Encodes a row's key values (in `primaryKey` order) as its row key. */
export function encodeKeyValues(values: readonly Json[]): string {
  if (values.length === 1) {
    const v = values[0];
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  return JSON.stringify(values);
}

/**
 * The stable string key of `row` (see the module docs for the encoding).
 * Throws {@link ValidationError} if a key field is missing, null or of the wrong type.
 *
 * @example
 * ```ts
 * const schema = { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] } as const;
 * rowKey(schema, { id: 'p_1' }); // 'p_1'
 * rowKey({ fields: [{ name: 'a', type: 'integer' }, { name: 'b', type: 'string' }], primaryKey: ['a', 'b'] },
 *        { a: 1, b: 'x' });     // '[1,"x"]'
 * ```
 */
export function rowKey(schema: TableSchema, row: Row, table?: string): string {
  const defs = keyFields(schema, table);
  const values = defs.map((def) => {
    const v = getOwn(row, def.name);
    if (v === undefined || v === null) {
      throw new ValidationError(`primary key field is ${v === null ? 'null' : 'missing'}`, {
        table,
        field: def.name,
      });
    }
    const issue = valueIssue(def.type, v);
    if (issue !== undefined) {
      throw new ValidationError(`invalid primary key value: ${issue}`, { table, field: def.name });
    }
    return v;
  });
  return encodeKeyValues(values);
}

/**
 * The row key for a key supplied by the application: a scalar for a one-field key, or an array
 * (one value per `primaryKey` field) for a composite key. A `Date` is accepted for `date`/`datetime`
 * key fields and converted as {@link encodeValue} does. Throws {@link ValidationError} on null,
 * missing values or the wrong arity, {@link SchemaError} on a bad schema.
 *
 * @example
 * ```ts
 * keyOf(projectsSchema, 'p_1');       // 'p_1'
 * keyOf(membersSchema, [42, 'admin']); // '[42,"admin"]'
 * ```
 */
export function keyOf(schema: TableSchema, key: Json | readonly Json[], table?: string): string {
  const defs = keyFields(schema, table);
  let values: readonly unknown[];
  if (Array.isArray(key)) {
    values = key;
  } else if (defs.length === 1) {
    values = [key];
  } else {
    throw new ValidationError(`a composite key needs an array of ${defs.length} values`, { table });
  }
  if (values.length !== defs.length) {
    throw new ValidationError(`the key needs ${defs.length} value(s), got ${values.length}`, { table });
  }
  const encoded = defs.map((def, i) => {
    const v = values[i];
    if (v === undefined || v === null) {
      throw new ValidationError(`primary key value is ${v === null ? 'null' : 'missing'}`, {
        table,
        field: def.name,
      });
    }
    return encodeValue(def.type, v, { table, field: def.name });
  });
  return encodeKeyValues(encoded);
}
