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
    userdbBench(quick: boolean): Promise<Figure[]>;
    benchLog?: (line: string) => void;
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
};

window.userdbBench = async (quick: boolean) => {
  const log = (line: string) => window.benchLog?.(line);
  await warmUp(realIndexedDb);
  const figures = await localWorkloads(realIndexedDb, localConfig(quick, log));
  return figures.map((f) => ({ ...f, note: f.note }));
};
