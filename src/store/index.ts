/**
 * The durable local store (IndexedDB through Dexie): base document, outbox, quarantine.
 * Internal to userdb; the public entry point exposes only `clearLocal`.
 */
export { isQuotaExceeded, toStorageError } from './errors.js';
export {
  type AppendedCommits,
  type AppendResult,
  databaseName,
  deleteLocalDatabase,
  entryBytes,
  LocalStore,
  type LocalStoreOptions,
  type LogChange,
  type OutboxTail,
  type OwnWriteChanges,
  type PickEntries,
  type StoreChange,
  type StoreSnapshot,
  type StoreWriteStats,
} from './local-store.js';
export {
  type BaseRecord,
  type BaseVersionRecord,
  type ClientRecord,
  EMPTY_DOC,
  type LogRecord,
  MAX_OWN_WRITES,
  type OutboxEntry,
  type OwnWriteRecord,
  outboxEntrySchema,
  patchOpSchema,
  type QuarantineRecord,
} from './records.js';
