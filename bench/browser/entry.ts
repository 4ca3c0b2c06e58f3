/**
 * The browser bundle of `npm run bench:browser`: workloads 1–4 on Chromium's real IndexedDB.
 * The runner calls `window.userdbBench(quick)` and reads the figures it resolves to; progress goes
 * to `window.benchLog` (exposed by the runner).
 */
import { clearLocal } from '../../src/index.js';
import type { Backend } from '../lib/backend.js';
import { localConfig } from '../lib/config.js';
import type { Figure } from '../lib/report.js';
import { localWorkloads, warmUp } from '../workloads/local.js';

declare global {
  interface Window {
    userdbBench(quick: boolean, only: readonly number[]): Promise<Figure[]>;
    benchLog?: (line: string) => void;
    /** Full GC of this page's heap, then its used size in bytes (exposed by the runner over CDP). */
    benchHeap?: () => Promise<number>;
  }
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
}

let counter = 0;
const run = Date.now().toString(36);

const realIndexedDb: Backend = {
  label: `IndexedDB (${navigator.userAgent.match(/(?:Headless)?Chrome\/[\d.]+/)?.[0] ?? 'browser'})`,
  fresh: () => {
    counter += 1;
    return { userId: `bench-${run}-${counter}`, indexedDB, IDBKeyRange };
  },
  dispose: async (place) => {
    await clearLocal(place.userId);
    await deleteDatabase(`raw:${place.userId}`);
  },
  heap: {
    afterGc: async () => {
      const measure = window.benchHeap;
      if (measure === undefined) throw new Error('the runner did not expose benchHeap');
      return measure();
    },
    how: 'Chromium used JS heap after a full GC (CDP HeapProfiler.collectGarbage, Runtime.getHeapUsage)',
  },
};

window.userdbBench = async (quick: boolean, only: readonly number[]) => {
  const log = (line: string) => window.benchLog?.(line);
  await warmUp(realIndexedDb);
  const figures = await localWorkloads(realIndexedDb, localConfig(quick, log), new Set(only));
  return figures.map((f) => ({ ...f, note: f.note }));
};
