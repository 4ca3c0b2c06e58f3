/**
 * The portable userdb document: pure functions over plain data (no I/O).
 *
 * - compact form ⇄ keyed form: {@link toKeyed}, {@link toCompact}, {@link canonicalCompact}
 * - validation and field encodings: {@link parseCompactDoc}, {@link compactDocSchema}, {@link encodeValue}
 * - row keys and keyed paths: {@link rowKey}, {@link keyOf}, {@link keyedPath}, {@link parseKeyedPath}
 * - keyed patches: {@link applyKeyed}, {@link compile} (→ index-based), {@link applyCompact}, {@link rebase}
 */

export { applyCompact } from './apply.js';
export { compile } from './compile.js';
export { canonicalCompact, tableToCompact, tableToKeyed, toCompact, toKeyed } from './convert.js';
export { encodeValue, FIELD_TYPES, isFieldType, isValidValue, type ValueLocation } from './fields.js';
export { isJson, jsonEqual, storableIssue, textIssue } from './json.js';
export { applyKeyed, realignTable } from './keyed.js';
export { keyFields, keyOf, PK_FIELD_TYPES, rowKey } from './keys.js';
export { keyedOp } from './ops.js';
export {
  escapePointer,
  type KeyedPathInfo,
  type KeyedTarget,
  keyedPath,
  parseKeyedPath,
  splitPointer,
  unescapePointer,
} from './pointer.js';
export { type RebaseConflict, type RebaseConflictKind, type RebaseResult, rebase } from './rebase.js';
export { keyOfArray, type SchemaInfo, schemaInfo } from './schema-info.js';
export * from './types.js';
export {
  checkTableName,
  compactDocSchema,
  normalizeRow,
  parseCompactDoc,
  parseTableSchema,
  sameSchema,
  tableSchemaSchema,
} from './validate.js';
