/**
 * The Node backend of the local workloads: fake-indexeddb, a fresh in-memory factory per database.
 * It is a pure-JavaScript IndexedDB: figures measured on it show userdb's own costs and how they
 * scale, not the speed of a browser's IndexedDB (`npm run bench:browser` measures that).
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Backend } from './backend.js';

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
  };
}
