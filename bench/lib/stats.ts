/**
 * Sample statistics and timing helpers of the benchmarks. Percentiles use the nearest-rank method
 * on the sorted samples (p50 of 1..100 is 50, p99 is 99), so they are always an observed value.
 */

/** Summary of a set of samples (milliseconds unless stated otherwise). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** The `q`-quantile (0 < q ≤ 1) of ascending `sorted` by nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/** n, p50, p99, mean, min and max of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, x) => s + x, 0);
  return {
    n: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution (Node and browsers). */
export function now(): number {
  return performance.now();
}

/** Runs `fn` once and returns its duration in ms. */
export async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = now();
  await fn();
  return now() - t0;
}

/**
 * Runs `fn` `warmup` times unmeasured, then `runs` times measured; returns the durations (ms).
 * `fn` gets the iteration index (warm-up iterations come first, numbered from 0).
 */
export async function repeat(
  runs: number,
  warmup: number,
  fn: (i: number) => Promise<unknown> | unknown,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = now();
    await fn(warmup + i);
    out.push(now() - t0);
  }
  return out;
}

/** Formats a duration in ms with 3 significant digits (µs below 0.1 ms). */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 0.1) return `${(ms * 1000).toPrecision(3)} µs`;
  if (ms < 1000) return `${ms.toPrecision(3)} ms`;
  return `${(ms / 1000).toPrecision(3)} s`;
}

/** Formats a byte count (B, KiB, MiB). */
export function fmtBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toPrecision(3)} KiB`;
  return `${(bytes / 1024 / 1024).toPrecision(3)} MiB`;
}

/** Formats a ratio as `×1.23`. */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  return `×${r >= 100 ? r.toFixed(0) : r.toPrecision(3)}`;
}

/** Lets pending timers, I/O and microtasks run (a macrotask turn). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
