/**
 * The Node backend of the local workloads: fake-indexeddb, a fresh in-memory factory per database.
 * It is a pure-JavaScript IndexedDB: figures measured on it show userdb's own costs and how they
 * scale, not the speed of a browser's IndexedDB (`npm run bench:browser` measures that).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Backend } from './backend.js';
import { tick } from './stats.js';

/** A full garbage collection (three rounds), then `heapUsed`. */
async function heapAfterGc(): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await tick();
  }
  return process.memoryUsage().heapUsed;
}

let counter = 0;

/** fake-indexeddb, labelled with its version. */
export function fakeIndexedDb(version: string): Backend {
  return {
    label: `fake-indexeddb ${version} (in memory)`,
    fresh: () => {
      counter += 1;
      return { userId: `bench-${counter}`, indexedDB: new IDBFactory(), IDBKeyRange };
    },
    dispose: async () => {},
    heap: { afterGc: heapAfterGc, how: 'Node heapUsed after a full GC' },
  };
}
