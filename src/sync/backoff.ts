/**
 * Capped, jittered exponential backoff.
 */

/** Backoff parameters, in milliseconds. */
export interface BackoffOptions {
  /** Delay before the first retry (before jitter). Default 1 000. */
  baseMs?: number | undefined;
  /** Upper bound of any delay. Default 60 000. */
  maxMs?: number | undefined;
}

/**
 * The delay before retry number `attempt` (1 for the first retry): `base · 2^(attempt-1)`, capped
 * at `max`, then "equal jitter": half of it fixed, half uniformly random, so a crowd of clients
 * coming back online spreads out while each still waits at least half the nominal delay.
 *
 * @example
 * ```ts
 * backoffDelay(3, Math.random, { baseMs: 500, maxMs: 30_000 }); // between 1000 and 2000
 * ```
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 1_000;
  const max = options.maxMs ?? 60_000;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const nominal = Math.min(max, base * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(nominal / 2 + (nominal / 2) * r);
}
