/**
 * Validation of documents, table schemas and rows.
 *
 * `compactDocSchema` checks the structure with zod; {@link parseCompactDoc} adds every check that
 * needs the schema (value types, non-null and unique keys) and returns a clean copy.
 */
import { z } from 'zod';
import { SchemaError, ValidationError } from '../errors.js';
import { rowFromArray } from './convert.js';
import { FIELD_TYPES, valueIssue } from './fields.js';
import { hasOwn, isPlainObject, reasonOf, setOwn, textIssue } from './json.js';
import { PK_FIELD_TYPES, rowKey } from './keys.js';
import { schemaInfo } from './schema-info.js';
import type { CompactDoc, CompactTable, FieldDef, Json, Row, TableSchema } from './types.js';

const fieldDefSchema = z.object({
  name: z
    .string()
    .min(1)
    .superRefine((name, ctx) => {
      const issue = textIssue(name);
      if (issue !== undefined) ctx.addIssue({ code: 'custom', message: `PostgreSQL cannot store ${issue}` });
    }),
  type: z.enum(FIELD_TYPES as [FieldDef['type'], ...FieldDef['type'][]]),
});

/**
 * zod schema of a table schema: fields `{name,type}` with unique names, a non-empty primary key
 * of distinct field names.
 *
 * @example
 * ```ts
 * tableSchemaSchema.safeParse({ fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }).success; // true
 * ```
 */
export const tableSchemaSchema: z.ZodType<TableSchema> = z
  .object({ fields: z.array(fieldDefSchema), primaryKey: z.array(z.string()).min(1) })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.fields.forEach((f, i) => {
      if (names.has(f.name))
        ctx.addIssue({ code: 'custom', message: `duplicate field name "${f.name}"`, path: ['fields', i] });
      names.add(f.name);
    });
    const pk = new Set<string>();
    s.primaryKey.forEach((name, i) => {
      if (pk.has(name))
        ctx.addIssue({
          code: 'custom',
          message: `duplicate primary key field "${name}"`,
          path: ['primaryKey', i],
        });
      pk.add(name);
      if (!names.has(name))
        ctx.addIssue({
          code: 'custom',
          message: `primary key field "${name}" is not a field`,
          path: ['primaryKey', i],
        });
    });
  });

const compactTableSchema: z.ZodType<CompactTable> = z
  .object({ schema: tableSchemaSchema, rows: z.array(z.array(z.unknown())) })
  .superRefine((t, ctx) => {
    const width = t.schema.fields.length;
    t.rows.forEach((r, i) => {
      if (r.length !== width) {
        ctx.addIssue({
          code: 'custom',
          message: `row has ${r.length} values, the table has ${width} fields`,
          path: ['rows', i],
        });
      }
    });
  }) as z.ZodType<CompactTable>;

/**
 * zod schema of the compact document's structure (the seed format): `version: 1`, `tables` an object
 * of tables, each `{ schema: { fields, primaryKey }, rows }` with every row as long as `fields`.
 * Table names such as `__proto__` are checked too (zod's `z.record` would skip them).
 * It does not check values against field types: use {@link parseCompactDoc} for that.
 *
 * @example
 * ```ts
 * compactDocSchema.safeParse({ version: 1, tables: {} }).success; // true
 * ```
 */
export const compactDocSchema: z.ZodType<CompactDoc> = z.object({
  version: z.literal(1),
  tables: z
    .custom<Record<string, CompactTable>>((v) => isPlainObject(v), 'expected an object of tables')
    .superRefine((tables, ctx) => {
      for (const name of Object.keys(tables)) {
        const r = compactTableSchema.safeParse(tables[name]);
        if (!r.success) {
          for (const issue of r.error.issues) {
            ctx.addIssue({ code: 'custom', message: issue.message, path: [name, ...issue.path] });
          }
        }
      }
    }),
}) as z.ZodType<CompactDoc>;

/**
 * Throws a {@link SchemaError} when `name` cannot be a table name: not a non-empty string, or
 * holding text PostgreSQL cannot store (U+0000, a lone surrogate).
 *
 * @example
 * ```ts
 * checkTableName('projects'); // ok
 * checkTableName('a\u0000'); // throws SchemaError
 * ```
 */
export function checkTableName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '')
    throw new SchemaError('a table name must be a non-empty string');
  const issue = textIssue(name);
  if (issue !== undefined)
    throw new SchemaError(`invalid table name: PostgreSQL cannot store ${issue}`, { table: name });
}

/**
 * Throws a {@link SchemaError} naming `table` (and the field at fault) when `schema` is not a valid
 * table schema; returns a clean copy.
 *
 * @example
 * ```ts
 * const schema = parseTableSchema({ fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, 'projects');
 * ```
 */
export function parseTableSchema(schema: unknown, table?: string): TableSchema {
  const r = tableSchemaSchema.safeParse(schema);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = fieldAt(schema, issue?.path);
    throw new SchemaError(
      `invalid table schema: ${issue?.message ?? 'malformed'} at ${formatIssuePath(issue?.path)}`,
      {
        table,
        field,
      },
    );
  }
  for (const name of r.data.primaryKey) {
    const def = r.data.fields.find((f) => f.name === name);
    if (def !== undefined && !PK_FIELD_TYPES.includes(def.type)) {
      throw new SchemaError(`primary key field has type ${def.type}, which cannot be a key`, {
        table,
        field: name,
      });
    }
  }
  return {
    fields: r.data.fields.map((f) => ({ name: f.name, type: f.type })),
    primaryKey: [...r.data.primaryKey],
  };
}

function fieldAt(schema: unknown, path: readonly PropertyKey[] | undefined): string | undefined {
  if (path === undefined || !isPlainObject(schema)) return undefined;
  const [where, index] = path;
  const list = where === 'fields' || where === 'primaryKey' ? schema[where] : undefined;
  if (!Array.isArray(list) || typeof index !== 'number') return undefined;
  const item: unknown = list[index];
  if (typeof item === 'string') return item;
  return isPlainObject(item) && typeof item.name === 'string' ? item.name : undefined;
}

function formatIssuePath(path: readonly PropertyKey[] | undefined): string {
  if (path === undefined || path.length === 0) return 'the root';
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

/**
 * Validates an untrusted compact document completely and returns a clean copy: the structure
 * ({@link compactDocSchema}), every value against its field type, non-null primary key values and
 * unique row keys. Throws {@link SchemaError} (structure) or {@link ValidationError} (values, keys)
 * naming the table, row key and field.
 *
 * @example
 * ```ts
 * const doc = parseCompactDoc(JSON.parse(text)); // throws on anything that is not a valid userdb document
 * ```
 */
export function parseCompactDoc(input: unknown): CompactDoc {
  if (!isPlainObject(input)) throw new SchemaError('invalid document: expected an object');
  if (input.version !== 1)
    throw new SchemaError(
      `invalid document: unsupported version ${JSON.stringify(input.version) ?? 'undefined'}`,
    );
  const tablesIn = input.tables;
  if (!isPlainObject(tablesIn)) throw new SchemaError('invalid document: "tables" must be an object');
  const tables: Record<string, CompactTable> = {};
  for (const name of Object.keys(tablesIn)) {
    setOwn(tables, name, parseCompactTable(tablesIn[name], name));
  }
  return { version: 1, tables };
}

function parseCompactTable(input: unknown, table: string): CompactTable {
  if (!isPlainObject(input)) throw new SchemaError('invalid table: expected an object', { table });
  const schema = parseTableSchema(input.schema, table);
  if (!Array.isArray(input.rows)) throw new SchemaError('invalid table: "rows" must be an array', { table });
  const width = schema.fields.length;
  const pk = new Set(schema.primaryKey);
  const seen = new Set<string>();
  const rows: Json[][] = input.rows.map((r: unknown, i: number) => {
    if (!Array.isArray(r)) throw new SchemaError(`invalid row at index ${i}: expected an array`, { table });
    if (r.length !== width) {
      throw new SchemaError(`invalid row at index ${i}: ${r.length} values for ${width} fields`, { table });
    }
    const row = rowFromArray(schema, r as Json[]);
    const key = rowKeyAt(schema, row, table, i);
    schema.fields.forEach((f, j) => {
      const v: unknown = r[j];
      if (v === null && pk.has(f.name))
        throw new ValidationError('primary key value is null', { table, key, field: f.name });
      const issue = valueIssue(f.type, v);
      if (issue !== undefined)
        throw new ValidationError(`invalid ${f.type} value: ${issue}`, { table, key, field: f.name });
    });
    if (seen.has(key)) throw new ValidationError('duplicate row key', { table, key });
    seen.add(key);
    return [...(r as Json[])];
  });
  return { schema, rows };
}

function rowKeyAt(schema: TableSchema, row: Row, table: string, index: number): string {
  try {
    return rowKey(schema, row, table);
  } catch (e) {
    if (e instanceof ValidationError) {
      throw new ValidationError(`invalid row at index ${index}: ${reasonOf(e)}`, {
        table,
        field: e.field,
        cause: e,
      });
    }
    throw e;
  }
}

/** Where a row sits, for error messages. */
export interface RowLocation {
  table: string;
  key?: string | undefined;
}

/**
 * Checks a keyed row against `schema` and returns it with every schema field present
 * (missing fields become `null`). The input object is returned as is when it already is complete.
 * Throws {@link ValidationError} on a non-object, an unknown field, a value of the wrong type or a null key field.
 */
export function normalizeRow(schema: TableSchema, row: unknown, where: RowLocation): Row {
  if (!isPlainObject(row)) throw new ValidationError('a row must be a plain object', where);
  const { byName } = schemaInfo(schema);
  for (const k of Object.keys(row)) {
    if (!byName.has(k)) throw new ValidationError('unknown field', { ...where, field: k });
  }
  let complete = true;
  for (const f of schema.fields) {
    if (!hasOwn(row, f.name)) {
      complete = false;
      continue;
    }
    const issue = valueIssue(f.type, row[f.name]);
    if (issue !== undefined)
      throw new ValidationError(`invalid ${f.type} value: ${issue}`, { ...where, field: f.name });
  }
  for (const name of schema.primaryKey) {
    if (!hasOwn(row, name) || row[name] === null) {
      throw new ValidationError('primary key value is missing or null', { ...where, field: name });
    }
  }
  if (complete) return row as Row;
  const out: Row = {};
  for (const f of schema.fields) setOwn(out, f.name, hasOwn(row, f.name) ? (row[f.name] as Json) : null);
  return out;
}

/**
 * Deep equality of two table schemas (field order matters, as it fixes the compact row layout).
 *
 * @example
 * ```ts
 * if (!sameSchema(local.schema, remote.schema)) console.warn('schemas differ');
 * ```
 */
export function sameSchema(a: TableSchema, b: TableSchema): boolean {
  return (
    a.fields.length === b.fields.length &&
    a.fields.every((f, i) => f.name === b.fields[i]?.name && f.type === b.fields[i]?.type) &&
    a.primaryKey.length === b.primaryKey.length &&
    a.primaryKey.every((n, i) => n === b.primaryKey[i])
  );
}
