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
  | 'forbidden'
  | 'network'
  | 'server'
  | 'bad_patch'
  | 'invalid_remote_document'
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

/**
 * The server refused a patch because the document changed since the client's base
 * (SQLSTATE `PT409`). `serverToken` is the server's current `updated_at`, normalized, when it was sent.
 *
 * @example
 * ```ts
 * if (e instanceof ConflictError) console.log('server is at', e.serverToken);
 * ```
 */
export class ConflictError extends UserDbError {
  override name = 'ConflictError';
  readonly serverToken: string | null;
  constructor(message: string, serverToken: string | null, options: UserDbErrorOptions = {}) {
    super('conflict', message, options);
    this.serverToken = serverToken;
  }
}

/**
 * A request or the resulting document exceeds the server's size limit (SQLSTATE `PT413`, HTTP 413).
 * Pushing stops until the outbox or the document shrinks, or `db.flush()` is called again.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof PayloadTooLargeError) alert('Your data is too large to sync');
 * ```
 */
export class PayloadTooLargeError extends UserDbError {
  override name = 'PayloadTooLargeError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('payload_too_large', message, options);
  }
}

/**
 * The request was not authenticated: no session, or an expired or invalid token (HTTP 401).
 * Transient: sync retries with backoff and at once when the token is refreshed.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof AuthError) await supabase.auth.refreshSession();
 * ```
 */
export class AuthError extends UserDbError {
  override name = 'AuthError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('auth', message, options);
  }
}

/**
 * The authenticated user may not do this (HTTP 403, or a session that belongs to another user
 * than the local database). Permanent: pushing stops until the cause is fixed.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof ForbiddenError) console.warn('signed in as someone else?');
 * ```
 */
export class ForbiddenError extends UserDbError {
  override name = 'ForbiddenError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('forbidden', message, options);
  }
}

/**
 * The server could not be reached: offline, connection refused or reset, timeout.
 * Transient: sync keeps everything and retries with backoff.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof NetworkError) showBanner('offline, changes are kept');
 * ```
 */
export class NetworkError extends UserDbError {
  override name = 'NetworkError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('network', message, options);
  }
}

/**
 * The server failed (HTTP 5xx) or answered something userdb cannot read.
 * Transient: sync retries with backoff. `status` is the HTTP status when there was one.
 *
 * @example
 * ```ts
 * if (e instanceof ServerError && e.status === 503) console.log('server busy');
 * ```
 */
export class ServerError extends UserDbError {
  override name = 'ServerError';
  readonly status: number | undefined;
  constructor(message: string, status?: number, options: UserDbErrorOptions = {}) {
    super('server', message, options);
    this.status = status;
  }
}

/**
 * The server rejected a patch operation (SQLSTATE `22023`, HTTP 400), or a local patch cannot be
 * compiled against the base. Permanent: pushing stops with the outbox intact.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof BadPatchError) console.error(status.lastError.message);
 * ```
 */
export class BadPatchError extends UserDbError {
  override name = 'BadPatchError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('bad_patch', message, options);
  }
}

/**
 * The document stored on the server is not a valid userdb document (for example a foreign client
 * wrote a malformed table). Sync stops pushing, keeps local data and the outbox, and resumes once
 * a pull returns a valid document again.
 *
 * @example
 * ```ts
 * if (status.lastError instanceof InvalidRemoteDocumentError) console.error(status.lastError.message);
 * ```
 */
export class InvalidRemoteDocumentError extends UserDbError {
  override name = 'InvalidRemoteDocumentError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('invalid_remote_document', message, options);
  }
}

/**
 * The database was closed (by `db.close()`), so it can no longer read or write.
 *
 * @example
 * ```ts
 * await db.close();
 * await db.table('projects').get('p_1'); // rejects with DatabaseClosedError
 * ```
 */
export class DatabaseClosedError extends UserDbError {
  override name = 'DatabaseClosedError';
  constructor(message: string, options: UserDbErrorOptions = {}) {
    super('closed', message, options);
  }
}
