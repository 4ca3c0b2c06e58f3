/**
 * Which failures sync retries and which stop it (PowerSync's split): network trouble, timeouts,
 * server failures, an expired session and local storage hiccups are retried with backoff for as
 * long as it takes; a rejected patch, an oversized document, a forbidden request or an invalid
 * server document are permanent until their cause changes.
 */
import { ServerError, UserDbError } from '../errors.js';

/**
 * Turns anything thrown into a {@link UserDbError} (unexpected exceptions become a `ServerError`
 * naming them, so they are retried with backoff rather than crashing the engine).
 *
 * @example
 * ```ts
 * const err = asUserDbError(caught);
 * ```
 */
export function asUserDbError(e: unknown): UserDbError {
  if (e instanceof UserDbError) return e;
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new ServerError(`unexpected failure during sync: ${detail}`, undefined, { cause: e });
}

/**
 * True for failures sync retries with backoff.
 *
 * @example
 * ```ts
 * if (!isTransient(err)) stopPushing(err);
 * ```
 */
export function isTransient(e: UserDbError): boolean {
  switch (e.code) {
    case 'network':
    case 'server':
    case 'storage':
    case 'auth':
      return true;
    default:
      return false;
  }
}
