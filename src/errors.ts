/**
 * Typed errors. Every error userdb throws or reports is a {@link UserDbError}
 * with a stable `code` and, where it applies, the `table`, `key` and `field` it concerns.
 *
 * @example
 * ```ts
 * try { await db.table('projects').insert(row); }
 * catch (e) { if (e instanceof DuplicateKeyError) console.log(e.table, e.key); }
 * ```
 */

/** Where an error points: table, row key and field, each optional. */
export interface ErrorLocation {
  table?: string | undefined;
  key?: string | undefined;
  field?: string | undefined;
}

/** Options accepted by every {@link UserDbError} constructor. */
export interface UserDbErrorOptions extends ErrorLocation {
  cause?: unknown;
}

/** The stable codes of {@link UserDbError}. */
export type UserDbErrorCode =
  | 'validation'
  | 'duplicate_key'
  | 'not_found'
  | 'schema'
  | 'storage'
  | 'conflict'
  | 'payload_too_large'
  | 'auth'
  | 'network'
  | 'server'
  | 'bad_patch'
  | 'closed';

function describe(message: string, loc: ErrorLocation): string {
  const where: string[] = [];
  if (loc.table !== undefined) where.push(`table "${loc.table}"`);
  if (loc.key !== undefined) where.push(`row "${loc.key}"`);
  if (loc.field !== undefined) where.push(`field "${loc.field}"`);
  return where.length > 0 ? `${message} (${where.join(', ')})` : message;
}

/**
 * Base class of every userdb error.
 *
 * @example
 * ```ts
 * db.status$.subscribe((s) => { if (s.lastError instanceof UserDbError) console.warn(s.lastError.code); });
 * ```
 */
export class UserDbError extends Error {
  override name = 'UserDbError';
  readonly code: UserDbErrorCode;
  readonly table: string | undefined;
  readonly key: string | undefined;
  readonly field: string | undefined;

  constructor(code: UserDbErrorCode, message: string, options: UserDbErrorOptions = {}) {
    super(describe(message, options), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.table = options.table;
    this.key = options.key;
    this.field = options.field;
  }
}

/** A value does not match its field's type, a field is unknown, or a key is missing. */
export class ValidationError extends UserDbError {
  override name = 'ValidationError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('validation', message, options);
  }
}

/** `insert` of a row whose primary key already exists. */
export class DuplicateKeyError extends UserDbError {
  override name = 'DuplicateKeyError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('duplicate_key', message, options);
  }
}

/** `update` of a missing row, or use of an unknown table. */
export class NotFoundError extends UserDbError {
  override name = 'NotFoundError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('not_found', message, options);
  }
}

/** A table schema or document is malformed (bad field type, bad primary key, misaligned rows…). */
export class SchemaError extends UserDbError {
  override name = 'SchemaError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('schema', message, options);
  }
}

/** IndexedDB failed (quota exceeded, blocked, corrupted record). Nothing was half-written. */
export class StorageError extends UserDbError {
  override name = 'StorageError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('storage', message, options);
  }
}
