/**
 * Maps what postgrest-js returns for a failed RPC (or what fetch throws) to userdb's typed errors.
 */
import {
  AuthError,
  BadPatchError,
  ConflictError,
  ForbiddenError,
  NetworkError,
  PayloadTooLargeError,
  ServerError,
  UserDbError,
} from '../errors.js';
import { normalizeToken } from './token.js';

/** The error half of a postgrest-js response (`PostgrestError` plus the HTTP status). */
export interface RpcFailure {
  status: number;
  error: { code?: string | undefined; message?: string | undefined; details?: string | null | undefined };
}

/**
 * Classifies a failed RPC. Status 0 (fetch failed, aborted, timed out) is a `NetworkError`;
 * `PT409` a `ConflictError` carrying the server token from `details`; `PT413` a
 * `PayloadTooLargeError`; `22023` and other 400s a `BadPatchError`; 401 an `AuthError`; 403 a
 * `ForbiddenError`; everything else a `ServerError`.
 *
 * @example
 * ```ts
 * const { data, error, status } = await supabase.rpc('userdb_patch', args);
 * if (error) throw mapRpcError('userdb_patch', { status, error });
 * ```
 */
export function mapRpcError(fn: string, failure: RpcFailure): UserDbError {
  const { status, error } = failure;
  const code = error.code ?? '';
  const message = `${fn}: ${error.message || `HTTP ${status}`}`;
  const options = { cause: error };
  if (code === 'PT409' || (status === 409 && code !== '23505')) {
    const token = typeof error.details === 'string' ? normalizeToken(error.details) : null;
    return new ConflictError(message, token, options);
  }
  if (code === 'PT413' || status === 413) return new PayloadTooLargeError(message, options);
  if (status === 0) return new NetworkError(message, options);
  if (status === 401 || code === 'PGRST301' || code === 'PGRST303') return new AuthError(message, options);
  if (status === 403) return new ForbiddenError(message, options);
  if (status === 400 || code === '22023') return new BadPatchError(message, options);
  if (status === 408) return new NetworkError(message, options);
  return new ServerError(message, status, options);
}

/**
 * Wraps anything thrown while calling the server (a fetch `TypeError`, an `AbortError` from a
 * timeout) into a `NetworkError`; typed userdb errors pass through.
 *
 * @example
 * ```ts
 * try { await call(); } catch (e) { throw toNetworkError('userdb_pull', e); }
 * ```
 */
export function toNetworkError(fn: string, thrown: unknown): UserDbError {
  if (thrown instanceof UserDbError) return thrown;
  const detail = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
  return new NetworkError(`${fn}: ${detail}`, { cause: thrown });
}
