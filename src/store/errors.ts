import { StorageError } from '../errors.js';

function errorName(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const name = (e as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/** True when `e` (or an error it wraps, as Dexie does in `inner`/`cause`) is a QuotaExceededError. */
export function isQuotaExceeded(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    if (errorName(cur) === 'QuotaExceededError') return true;
    const next = (cur as { inner?: unknown; cause?: unknown }).inner ?? (cur as { cause?: unknown }).cause;
    cur = next;
  }
  return false;
}

/**
 * Wraps any IndexedDB/Dexie failure in a {@link StorageError} that says what was being done.
 * A StorageError passes through unchanged.
 */
export function toStorageError(action: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  if (isQuotaExceeded(e)) {
    return new StorageError(
      `${action} failed: the browser's storage quota is exceeded; nothing was written`,
      {
        cause: e,
      },
    );
  }
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new StorageError(`${action} failed (${detail}); nothing was written`, { cause: e });
}
