import type { Json } from '../doc/index.js';

/**
 * Freezes a JSON value deeply, in place, and returns it. Rows held by the view are frozen so that
 * the objects handed to the application (and compared by reference) can never change under it.
 * Already-frozen subtrees are skipped, so re-freezing a row that shares values is cheap.
 */
export function deepFreeze<T extends Json>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (const item of value) deepFreeze(item);
  } else {
    for (const key of Object.keys(value)) deepFreeze((value as { [k: string]: Json })[key] as Json);
  }
  return value;
}
