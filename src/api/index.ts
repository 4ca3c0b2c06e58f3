/** The public API: typed schemas, the database, tables and queries. */

export type { HeldEntry } from './held.js';
export {
  type DeclaredTable,
  defineSchema,
  type FieldShape,
  type IndexDefinition,
  type InferInsert,
  type InferRow,
  type InsertOf,
  type KeyOf,
  type RowOf,
  type SchemaDefinition,
  type TableDefinition,
  type TableTypes,
  type TableTypesOf,
  type UntypedRow,
  type UntypedTableTypes,
  type UpdateOf,
  type UserDbSchema,
} from './schema.js';
export { type ComparisonOp, Query, Table } from './table.js';
export {
  type ClearLocalOptions,
  type CreateUserDbOptions,
  clearLocal,
  createUserDb,
  type RebuildResult,
  type TableName,
  type TypesOf,
  UserDb,
} from './userdb.js';
