/**
 * Sizes and repeat counts of the local workloads, shared by the Node and browser runners.
 * Full: 1k/10k/100k rows; fewer repeats at 100k, where each measured step is slower.
 * Quick (`--quick`): 1k/10k rows and few repeats, a smoke run of the harness (figures not for use).
 */
import type { LocalConfig } from '../workloads/local.js';

/** The local workloads' configuration. */
export function localConfig(quick: boolean, log: (line: string) => void): LocalConfig {
  return quick
    ? {
        sizes: [1000, 10_000],
        writeRuns: () => 100,
        writeWarmup: 20,
        listRuns: () => 20,
        bulkRows: 2000,
        bulkRuns: 2,
        getRuns: 2000,
        queryRuns: 10,
        afterStoredRuns: 5,
        pendingAt: { rows: 10_000, edits: [250, 500], runs: 1 },
        startRuns: () => 3,
        log,
      }
    : {
        sizes: [1000, 10_000, 100_000],
        writeRuns: (rows) => (rows >= 100_000 ? 300 : 500),
        writeWarmup: 50,
        listRuns: (rows) => (rows >= 100_000 ? 30 : 100),
        bulkRows: 10_000,
        bulkRuns: 3,
        getRuns: 10_000,
        queryRuns: 30,
        pendingAt: { rows: 10_000, edits: [500, 1000], runs: 3 },
        afterStoredRuns: 20,
        startRuns: (rows) => (rows >= 100_000 ? 7 : 20),
        log,
      };
}
