/**
 * userdb: an offline-first local document per user (IndexedDB), typed tables, live queries, and
 * (with the sync engine) conflict-checked sync to one JSONB row in Supabase.
 *
 * @example
 * ```ts
 * import { createUserDb, defineSchema } from 'supabase-userdb';
 * import { z } from 'zod';
 *
 * const schema = defineSchema({
 *   projects: { fields: { id: z.string(), title: z.string() }, primaryKey: ['id'] },
 * });
 * const db = await createUserDb({ userId, schema });
 * await db.table('projects').insert({ id: 'p_1', title: 'First' });
 * ```
 */
export {
  type ClearLocalOptions,
  type ComparisonOp,
  type CreateUserDbOptions,
  clearLocal,
  createUserDb,
  defineSchema,
  type FieldShape,
  type HeldEntry,
  type IndexDefinition,
  type InferInsert,
  type InferRow,
  type InsertOf,
  type KeyOf,
  Query,
  type RowOf,
  type SchemaDefinition,
  Table,
  type TableDefinition,
  type TableName,
  type TableTypes,
  type TableTypesOf,
  type TypesOf,
  type UntypedRow,
  type UntypedTableTypes,
  type UpdateOf,
  UserDb,
  type UserDbSchema,
} from './api/index.js';
export type {
  CompactDoc,
  CompactTable,
  FieldDef,
  FieldType,
  Json,
  PatchOp,
  Row,
  TableSchema,
} from './doc/index.js';
export {
  AuthError,
  BadPatchError,
  ConflictError,
  DatabaseClosedError,
  DuplicateKeyError,
  type ErrorLocation,
  ForbiddenError,
  InvalidRemoteDocumentError,
  NetworkError,
  NotFoundError,
  PayloadTooLargeError,
  SchemaError,
  ServerError,
  StorageError,
  UserDbError,
  type UserDbErrorCode,
  type UserDbErrorOptions,
  ValidationError,
} from './errors.js';
export type { QueryExplain, SortDirection, WhereOp } from './query/index.js';
export type {
  BackoffOptions,
  ConflictHandler,
  DeleteConflict,
  FieldConflict,
  Signal,
  SyncConflict,
  SyncOptions,
  SyncPhase,
  SyncStatus,
} from './sync/index.js';
