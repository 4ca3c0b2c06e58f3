/**
 * Where the local workloads keep their IndexedDB databases: fake-indexeddb in Node (a fresh factory
 * per database), the browser's real IndexedDB in Chromium (fresh names, deleted afterwards).
 */

/** One isolated place for a user's database (and a raw Dexie database next to it). */
export interface Place {
  userId: string;
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
}

/** An IndexedDB implementation to run the local workloads on. */
export interface Backend {
  /** e.g. "fake-indexeddb 6.2.8 (in memory)" or "IndexedDB (Chromium 141)". */
  readonly label: string;
  /** A new, empty place. */
  fresh(): Place;
  /** Deletes what `place` holds (its databases must be closed). */
  dispose(place: Place): Promise<void>;
  /** The used heap after a full garbage collection, where it can be measured. */
  readonly heap?: {
    /** Runs a full garbage collection, then returns the used JavaScript heap in bytes. */
    afterGc(): Promise<number>;
    /** How it is measured, e.g. "Node heapUsed after a full GC". */
    readonly how: string;
  };
}
