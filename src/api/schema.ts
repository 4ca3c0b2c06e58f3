/**
 * Typed schemas: tables declared with zod field schemas, from which userdb derives the document's
 * Frictionless field types and TypeScript infers row, insert, update and key types.
 */
import type { z } from 'zod';
import {
  checkTableName,
  type FieldDef,
  type FieldType,
  type Json,
  parseTableSchema,
  type TableSchema,
} from '../doc/index.js';
import { SchemaError } from '../errors.js';
import { INDEXABLE_TYPES } from '../query/index.js';

/**
 * The zod schemas of a table's fields, by field name.
 *
 * @example
 * ```ts
 * const fields = { id: z.string(), done: z.boolean() } satisfies FieldShape;
 * ```
 */
export type FieldShape = Record<string, z.ZodType>;

/**
 * One index of a declared table: a field name, or a list of field names (a compound index, sorted
 * by the first field, then the second, …). Indexed fields must be scalars (string, number, integer,
 * boolean, date, time, datetime).
 *
 * @example
 * ```ts
 * const byProject: IndexDefinition<{ project_id: z.ZodString; created_at: z.ZodISODateTime }> = ['project_id', 'created_at'];
 * ```
 */
export type IndexDefinition<F extends FieldShape = FieldShape> =
  | (keyof F & string)
  | readonly (keyof F & string)[];

/**
 * One declared table: zod field schemas, the primary key's field names, and optional indexes
 * (used by `where` with `==`, `in` and ranges, and by `orderBy`; see docs/queries.md).
 *
 * @example
 * ```ts
 * const tasks: TableDefinition = {
 *   fields: { id: z.string(), title: z.string(), status: z.string() },
 *   primaryKey: ['id'],
 *   indexes: ['status'],
 * };
 * ```
 */
export interface TableDefinition<F extends FieldShape = FieldShape> {
  fields: F;
  primaryKey: readonly (keyof F & string)[];
  indexes?: readonly IndexDefinition<F>[] | undefined;
}

/**
 * All declared tables, by table name (what {@link defineSchema} takes).
 *
 * @example
 * ```ts
 * const definition = { tasks: { fields: { id: z.string() }, primaryKey: ['id'] } } satisfies SchemaDefinition;
 * ```
 */
export type SchemaDefinition = Record<string, TableDefinition>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The stored value type of a field: optional fields are stored (and read) as `null` when absent. */
type StoredValue<Z extends z.ZodType> =
  undefined extends z.output<Z> ? Exclude<z.output<Z>, undefined> | null : z.output<Z>;

type OptionalKeys<F extends FieldShape> = {
  [K in keyof F]: undefined extends z.input<F[K]> ? K : never;
}[keyof F];
type RequiredKeys<F extends FieldShape> = Exclude<keyof F, OptionalKeys<F>>;
type InputValue<Z extends z.ZodType> = z.input<Z> | (undefined extends z.output<Z> ? null : never);

/**
 * A row as read from a table with fields `F`: every field present (optional fields as `null`), read-only.
 *
 * @example
 * ```ts
 * type Task = RowOf<{ id: z.ZodString; note: z.ZodOptional<z.ZodString> }>; // { readonly id: string; readonly note: string | null }
 * ```
 */
export type RowOf<F extends FieldShape> = Simplify<{ [K in keyof F]: StoredValue<F[K]> }>;

/**
 * A row as given to `insert`/`upsert`: optional and defaulted fields may be left out.
 *
 * @example
 * ```ts
 * type NewTask = InsertOf<typeof schema.definition.tasks.fields>;
 * ```
 */
export type InsertOf<F extends FieldShape> = Simplify<
  { [K in RequiredKeys<F>]: z.input<F[K]> } & { [K in OptionalKeys<F>]?: InputValue<F[K]> }
>;

/**
 * The changes given to `update`: any subset of the non-key fields.
 *
 * @example
 * ```ts
 * type TaskChanges = UpdateOf<typeof schema.definition.tasks.fields, ['id']>;
 * ```
 */
export type UpdateOf<F extends FieldShape, PK extends readonly string[]> = Simplify<{
  [K in Exclude<keyof F, PK[number]>]?: InputValue<F[K]>;
}>;

/**
 * A primary key value: the key field's value for a one-field key, a tuple for a composite key.
 *
 * @example
 * ```ts
 * type MemberKey = KeyOf<{ team: z.ZodString; user: z.ZodNumber }, ['team', 'user']>; // readonly [string, number]
 * ```
 */
export type KeyOf<F extends FieldShape, PK extends readonly string[]> = PK extends readonly [
  infer Only extends string,
]
  ? z.output<F[Only]>
  : { readonly [I in keyof PK]: PK[I] extends keyof F ? z.output<F[PK[I]]> : never };

/**
 * The four types of a table's API (row read, insert input, update changes, key).
 *
 * @example
 * ```ts
 * type T = TableTypesOf<typeof schema.definition, 'tasks'>; // satisfies TableTypes
 * ```
 */
export interface TableTypes {
  row: object;
  insert: object;
  update: object;
  key: unknown;
}

/**
 * A row of an untyped table.
 *
 * @example
 * ```ts
 * const row: UntypedRow = { id: 'n1', tags: ['a'] };
 * ```
 */
export type UntypedRow = Record<string, Json>;

/**
 * The types of an untyped table (created at run time, or reached with `db.untypedTable`).
 *
 * @example
 * ```ts
 * const notes: Table<UntypedTableTypes> = db.untypedTable('notes');
 * ```
 */
export interface UntypedTableTypes {
  row: UntypedRow;
  insert: Record<string, Json | Date>;
  update: Record<string, Json | Date>;
  key: Json | readonly Json[];
}

/**
 * The API types of declared table `T` of schema definition `S`.
 *
 * @example
 * ```ts
 * type Task = TableTypesOf<typeof schema.definition, 'tasks'>['row'];
 * ```
 */
export type TableTypesOf<S extends SchemaDefinition, T extends keyof S> = {
  row: RowOf<S[T]['fields']>;
  insert: InsertOf<S[T]['fields']>;
  update: UpdateOf<S[T]['fields'], S[T]['primaryKey']>;
  key: KeyOf<S[T]['fields'], S[T]['primaryKey']>;
};

/** What userdb knows about one declared field at run time. */
export interface FieldSpec {
  name: string;
  type: FieldType;
  zod: z.ZodType;
  /** `null` is accepted (the zod schema is nullable or optional). */
  nullable: boolean;
}

/** What userdb knows about one declared table at run time. */
export interface DeclaredTable {
  name: string;
  schema: TableSchema;
  fields: ReadonlyMap<string, FieldSpec>;
  /** The declared indexes, each as a list of field names. */
  indexes: readonly (readonly string[])[];
}

const DECLARED: unique symbol = Symbol('userdb.declaredTables');

/**
 * A schema made by {@link defineSchema}: the definition (for type inference) and the derived
 * document schemas.
 *
 * @example
 * ```ts
 * schema.tables.tasks.fields; // [{ name: 'id', type: 'string' }, …]
 * ```
 */
export interface UserDbSchema<S extends SchemaDefinition = SchemaDefinition> {
  /** The definition given to {@link defineSchema}. */
  readonly definition: S;
  /** The document schema (Frictionless fields, primary key) of each declared table. */
  readonly tables: { readonly [T in keyof S]: TableSchema };
  /** @internal */
  readonly [DECLARED]: ReadonlyMap<string, DeclaredTable>;
}

/** The declared tables of a schema (internal). */
export function declaredTables(schema: UserDbSchema | undefined): ReadonlyMap<string, DeclaredTable> {
  if (schema === undefined) return new Map();
  const declared: unknown =
    typeof schema === 'object' && schema !== null ? (schema as Partial<UserDbSchema>)[DECLARED] : undefined;
  if (!(declared instanceof Map)) {
    throw new SchemaError(
      'createUserDb: `schema` must be made by defineSchema({ … }) (got a plain value); pass defineSchema(definition)',
    );
  }
  return declared as ReadonlyMap<string, DeclaredTable>;
}

interface ZodInternals {
  _zod: {
    def: {
      type: string;
      format?: string;
      innerType?: z.ZodType;
      checks?: { _zod: { def: { check?: string; format?: string } } }[];
      values?: readonly unknown[];
      entries?: Record<string, unknown>;
    };
  };
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);
const NOT_JSON = new Set([
  'date',
  'bigint',
  'symbol',
  'undefined',
  'void',
  'never',
  'function',
  'map',
  'set',
  'promise',
  'nan',
  'file',
]);
const INT_FORMATS = new Set(['safeint', 'int32', 'uint32']);

function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

/**
 * The Frictionless field type of a zod schema: string/enum/string literal → string,
 * `z.iso.datetime()` → datetime, `z.iso.date()` → date, `z.iso.time()` → time, int → integer,
 * number → number, boolean, object/record → object, array/tuple → array, anything else → any;
 * `nullable`/`optional`/`default` are unwrapped. Types that have no JSON form (`z.date()`,
 * `z.bigint()`, …) throw {@link SchemaError}.
 */
export function fieldTypeOf(schema: z.ZodType, where: { table: string; field: string }): FieldType {
  let def = (schema as unknown as ZodInternals)._zod.def;
  while (WRAPPERS.has(def.type) && def.innerType !== undefined) {
    def = (def.innerType as unknown as ZodInternals)._zod.def;
  }
  switch (def.type) {
    case 'string':
      if (def.format === 'datetime') return 'datetime';
      if (def.format === 'date') return 'date';
      if (def.format === 'time') return 'time';
      return 'string';
    case 'number': {
      if (def.format !== undefined && INT_FORMATS.has(def.format)) return 'integer';
      const int = def.checks?.some(
        (c) => c._zod.def.check === 'number_format' && INT_FORMATS.has(c._zod.def.format ?? ''),
      );
      return int === true ? 'integer' : 'number';
    }
    case 'boolean':
      return 'boolean';
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      return values.every((v) => typeof v === 'string') ? 'string' : 'any';
    }
    case 'literal': {
      const values = def.values ?? [];
      if (values.every((v) => typeof v === 'string')) return 'string';
      if (values.every((v) => typeof v === 'boolean')) return 'boolean';
      if (values.every((v) => Number.isSafeInteger(v))) return 'integer';
      if (values.every((v) => typeof v === 'number')) return 'number';
      return 'any';
    }
    case 'object':
    case 'record':
      return 'object';
    case 'array':
    case 'tuple':
      return 'array';
    default:
      if (NOT_JSON.has(def.type)) {
        throw new SchemaError(
          `a zod ${def.type} field cannot be stored as JSON (use z.iso.datetime() for dates, numbers for bigints)`,
          where,
        );
      }
      return 'any';
  }
}

function acceptsNull(schema: z.ZodType): boolean {
  if (schema.safeParse(null).success) return true;
  const absent = schema.safeParse(undefined);
  return absent.success && absent.data === undefined;
}

/** Checks a table's index declarations (unknown fields, unordered types, duplicates). */
function parseIndexes(
  table: string,
  indexes: unknown,
  fields: ReadonlyMap<string, FieldSpec>,
): (readonly string[])[] {
  if (indexes === undefined) return [];
  if (!Array.isArray(indexes))
    throw new SchemaError('"indexes" must be an array of field names or lists of field names', { table });
  const out: (readonly string[])[] = [];
  const seen = new Set<string>();
  for (const index of indexes as unknown[]) {
    const names: unknown[] = Array.isArray(index) ? index : [index];
    if (names.length === 0) throw new SchemaError('an index needs at least one field', { table });
    for (const field of names) {
      if (typeof field !== 'string')
        throw new SchemaError(`an index field must be a field name, got ${typeof field}`, { table });
      const spec = fields.get(field);
      if (spec === undefined) throw new SchemaError('index on an unknown field', { table, field });
      if (!INDEXABLE_TYPES.has(spec.type)) {
        throw new SchemaError(
          `a field of type ${spec.type} cannot be indexed (only string, number, integer, boolean, date, time, datetime)`,
          { table, field },
        );
      }
    }
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined)
      throw new SchemaError('an index names a field twice', { table, field: String(twice) });
    const id = JSON.stringify(names);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(names as string[]);
  }
  return out;
}

/**
 * Declares the tables of a typed database. Each table lists its fields as zod schemas and its primary
 * key; userdb derives the document schema (Frictionless field types) and TypeScript infers the row
 * types. Nullable and optional fields may hold `null`; primary-key fields never do.
 * Throws {@link SchemaError} for an invalid declaration (unknown key field, field type without a JSON
 * form, key field of type object/array/any, an index on an unknown field or on a field of type
 * object/array/any).
 *
 * @example
 * ```ts
 * const schema = defineSchema({
 *   projects: {
 *     fields: { id: z.string(), title: z.string(), status: z.enum(['open', 'closed']), created_at: z.iso.datetime() },
 *     primaryKey: ['id'],
 *     indexes: ['status', ['status', 'created_at']],
 *   },
 * });
 * ```
 */
export function defineSchema<const S extends SchemaDefinition>(
  definition: S & {
    [T in keyof S]: {
      primaryKey: readonly (keyof S[T]['fields'] & string)[];
      indexes?: readonly IndexDefinition<S[T]['fields']>[] | undefined;
    };
  },
): UserDbSchema<S> {
  const declared = new Map<string, DeclaredTable>();
  const tables: Record<string, TableSchema> = {};
  if (typeof definition !== 'object' || definition === null)
    throw new SchemaError('a schema must be an object');
  for (const name of Object.keys(definition)) {
    checkTableName(name);
    const table = definition[name] as TableDefinition;
    if (
      typeof table !== 'object' ||
      table === null ||
      typeof table.fields !== 'object' ||
      table.fields === null
    ) {
      throw new SchemaError('a table needs "fields" (zod schemas by field name) and "primaryKey"', {
        table: name,
      });
    }
    const fields = new Map<string, FieldSpec>();
    const defs: FieldDef[] = [];
    for (const field of Object.keys(table.fields)) {
      const zod = table.fields[field];
      if (!isZodSchema(zod)) throw new SchemaError('a field must be a zod schema', { table: name, field });
      const type = fieldTypeOf(zod, { table: name, field });
      fields.set(field, { name: field, type, zod, nullable: acceptsNull(zod) });
      defs.push({ name: field, type });
    }
    const schema = parseTableSchema(
      {
        fields: defs,
        primaryKey: Array.isArray(table.primaryKey) ? [...table.primaryKey] : table.primaryKey,
      },
      name,
    );
    declared.set(name, { name, schema, fields, indexes: parseIndexes(name, table.indexes, fields) });
    Object.defineProperty(tables, name, { value: schema, enumerable: true });
  }
  return Object.freeze({
    definition,
    tables: Object.freeze(tables) as UserDbSchema<S>['tables'],
    [DECLARED]: declared,
  });
}

/**
 * The row type of declared table `T` of a schema made by {@link defineSchema}.
 *
 * @example
 * ```ts
 * type Project = InferRow<typeof schema, 'projects'>;
 * ```
 */
export type InferRow<U extends UserDbSchema, T extends keyof U['definition']> = RowOf<
  U['definition'][T]['fields']
>;

/**
 * The insert type of declared table `T` of a schema made by {@link defineSchema}.
 *
 * @example
 * ```ts
 * const draft: InferInsert<typeof schema, 'projects'> = { id: 'p_1', title: 'First', status: 'open', created_at };
 * ```
 */
export type InferInsert<U extends UserDbSchema, T extends keyof U['definition']> = InsertOf<
  U['definition'][T]['fields']
>;
