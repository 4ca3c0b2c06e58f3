/**
 * The durable local store: one Dexie (IndexedDB) database per user, named `userdb:<userId>`.
 *
 * Tables:
 * - `meta` (out-of-line keys): `base` → {@link BaseRecord} (a server-confirmed document and token),
 *   `baseVersion` → {@link BaseVersionRecord} (the current generation and token), `baseMark` →
 *   {@link BaseMarkRecord} (the stored base was validated), `client` → {@link ClientRecord}.
 * - `log` (key `generation`, version 2): {@link LogRecord}s, the server-acknowledged changes after
 *   the stored base. The current base is `base` + `log`, in generation order.
 * - `outbox` (`++seq`): one {@link OutboxEntry} per committed write or transaction, append-only.
 * - `quarantine` (`++id`): records that failed validation when read back ({@link QuarantineRecord}).
 * - `own` (key `cell`, index `seq`, version 3): cell values this device wrote and the server
 *   acknowledged ({@link OwnWriteRecord}), written with the push that wrote them, bounded, read and
 *   forgotten with the foreign change that declares it overrode them (`overridden` reports).
 *
 * A write appends one outbox row. A push or a delta pull appends its changes to `log` in the
 * transaction that deletes the acknowledged outbox rows (O(change)); a whole document received
 * from the server replaces `base` and empties `log`; {@link LocalStore.compact} folds `log` into
 * `base` in the background. This is the only module of userdb that imports Dexie.
 */
import { Dexie, type Table as DexieTable, RangeSet } from 'dexie';
import type { CompactDoc, Json, PatchOp } from '../doc/index.js';
import { applyCompact, jsonEqual, parseCompactDoc } from '../doc/index.js';
import { StorageError } from '../errors.js';
import { toStorageError } from './errors.js';
import {
  type BaseMarkRecord,
  type BaseRecord,
  type BaseVersionRecord,
  baseMarkSchema,
  baseRecordShape,
  type ClientRecord,
  clientRecordSchema,
  DOC_VALIDATION,
  describeIssues,
  EMPTY_DOC,
  type LogRecord,
  logRecordSchema,
  MAX_OWN_WRITES,
  META_BASE,
  META_BASE_MARK,
  META_BASE_VERSION,
  META_CLIENT,
  type OutboxEntry,
  type OwnWriteRecord,
  outboxEntrySchema,
  ownWriteRecordSchema,
  type QuarantineRecord,
} from './records.js';

/** Where the local store lives. `indexedDB`/`IDBKeyRange` default to the browser's globals. */
export interface LocalStoreOptions {
  userId: string;
  indexedDB?: IDBFactory | undefined;
  IDBKeyRange?: typeof IDBKeyRange | undefined;
  /** Own cell writes remembered for `overridden` reports (default {@link MAX_OWN_WRITES}). */
  maxOwnWrites?: number | undefined;
}

/** What the store wrote to IndexedDB so far (UTF-8 JSON bytes of the records put), per table. */
export interface StoreWriteStats {
  meta: number;
  log: number;
  outbox: number;
  /** Own cell writes remembered (see {@link OwnWriteChanges}). */
  own: number;
  /** Times the whole base document was written. */
  baseWrites: number;
}

/** A change to append to the log (see {@link LocalStore.appendLog}). */
export type LogChange = Omit<LogRecord, 'generation'>;

/**
 * The bookkeeping of this device's acknowledged cell writes that goes with a log append, in its
 * transaction (see {@link OwnWriteRecord}). Cells are ids as in `OwnWriteRecord.cell`.
 */
export interface OwnWriteChanges {
  /** Cells an own push wrote, with their values: remembered under `seq`. */
  writes?: readonly { cell: string; value: Json }[] | undefined;
  seq?: number | undefined;
  /**
   * Foreign `test` ops that a foreign change's write followed: a cell whose remembered value equals
   * `expected` is returned as overridden and forgotten (so it is reported once).
   */
  checks?: readonly { cell: string; expected: Json }[] | undefined;
  /**
   * Cells foreign changes overwrote, forgotten: ids, prefixes ending with `/` (a row's or a table's
   * cells), or `''` (all).
   */
  overwritten?: readonly string[] | undefined;
}

/** What {@link LocalStore.load} found: the base, the pending outbox, and the records it quarantined. */
export interface StoreSnapshot {
  base: BaseRecord;
  entries: OutboxEntry[];
  problems: StorageError[];
}

/** Which parts of the store changed (in this instance or another one on the same IndexedDB). */
export interface StoreChange {
  /** `meta` changed: possibly a new base (compare {@link BaseVersionRecord.generation}). */
  meta: boolean;
  /** `outbox` changed: entries appended or deleted. */
  outbox: boolean;
  /**
   * The change is only outbox rows appended by this very instance (through {@link LocalStore.append}):
   * a database applies its own writes itself and ignores these; a pusher wants them.
   */
  ownAppendsOnly: boolean;
  /**
   * When the change is only outbox rows appended by another instance in this process: their ops,
   * so that they can be applied at once without reading them back.
   */
  commits?: AppendedCommits;
}

/** Outbox rows appended by another instance, with their ops. */
export interface AppendedCommits {
  /** The base generation they were appended on. */
  generation: number;
  /**
   * Present when `generation` was not read in an appending transaction but assumed (see
   * `generationChecked` of {@link AppendResult}).
   */
  generationAssumed?: true;
  /** The rows, in seq order. */
  entries: { seq: number; ops: PatchOp[] }[];
}

/** The result of {@link LocalStore.append}. */
export interface AppendResult {
  /** The new entry's seq. */
  seq: number;
  /**
   * The seq the outbox's key generator gave out just before this one (0 for the first ever): when it
   * is above the last seq a reader knows of, another instance appended (or appended and pushed) in
   * between. Never below the highest seq present in the outbox before the append.
   */
  previousSeq: number;
  /** The base generation at the time of the append (see `generationChecked`). */
  generation: number;
  /**
   * True when `generation` was read in the appending transaction. False when it is the generation
   * this instance last read and no change of the store's `meta` was seen in this process since: then
   * another tab may have changed the base just before the append without this process knowing yet;
   * its change notification follows, and a reader must then not assume the entry was appended on
   * `generation`.
   */
  generationChecked: boolean;
}

/** Entries appended after a given seq, and the base generation they apply to. */
export interface OutboxTail {
  generation: number;
  /** Set when the current base came from an exact push (see {@link BaseVersionRecord.pushedFrom}). */
  pushedFrom: { generation: number; upToSeq: number } | undefined;
  entries: OutboxEntry[];
  /**
   * With `fromGeneration`: the log records from that generation to the current one, in order, or
   * `undefined` when the log does not cover them (a whole base was stored, or they were compacted).
   */
  log?: LogRecord[] | undefined;
  /**
   * With `pick`: the outbox entries it asked for, read in the same transaction, by seq (`null`: not
   * in the outbox, or unreadable).
   */
  picked?: Map<number, PatchOp[] | null> | undefined;
}

/**
 * Chooses outbox entries to read along with a tail (see {@link LocalStore.readSince}): called with the
 * log records and the entries read so far, returns the seqs to read next (none: done).
 */
export type PickEntries = (
  log: readonly LogRecord[],
  picked: ReadonlyMap<number, PatchOp[] | null>,
) => readonly number[];

interface MetaValue {
  [key: string]: unknown;
}

type Meta = DexieTable<MetaValue, string>;
type Outbox = DexieTable<OutboxEntry, number, Omit<OutboxEntry, 'seq'>>;
type Quarantine = DexieTable<QuarantineRecord, number>;
type Log = DexieTable<LogRecord, number>;
type Own = DexieTable<OwnWriteRecord, string>;

/** The IndexedDB database name of a user's local data. */
export function databaseName(userId: string): string {
  return `userdb:${userId}`;
}

function createDexie(options: LocalStoreOptions): Dexie {
  const dexieOptions: ConstructorParameters<typeof Dexie>[1] = { cache: 'disabled' };
  dexieOptions.chromeTransactionDurability = 'relaxed'; // what a crash can lose: docs/queries.md#durability
  if (options.indexedDB !== undefined) dexieOptions.indexedDB = options.indexedDB;
  if (options.IDBKeyRange !== undefined) dexieOptions.IDBKeyRange = options.IDBKeyRange;
  const db = new Dexie(databaseName(options.userId), dexieOptions);
  db.version(1).stores({ meta: '', outbox: '++seq', quarantine: '++id' });
  // version 2: the log of acknowledged changes after the base (no data migration: an empty log)
  db.version(2).stores({ meta: '', outbox: '++seq', quarantine: '++id', log: 'generation' });
  // version 3: own acknowledged cell writes, for `overridden` reports across reloads (none at first)
  db.version(3).stores({
    meta: '',
    outbox: '++seq',
    quarantine: '++id',
    log: 'generation',
    own: 'cell, seq',
  });
  return db;
}

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Size in UTF-8 bytes of an entry's ops as JSON (what a push sends). */
export function entryBytes(entry: OutboxEntry): number {
  return utf8Length(JSON.stringify(entry.ops));
}

/**
 * The local store of one user. Created with {@link LocalStore.open}; used by the database (writes,
 * reloads) and by the sync engine (read the outbox, store a pushed or pulled base).
 *
 * @example
 * ```ts
 * const store = await LocalStore.open({ userId: 'u1', indexedDB });
 * const { base, entries } = await store.load();
 * await store.append([{ op: 'remove', path: '/tables/projects' }]);
 * store.close();
 * ```
 */
export class LocalStore {
  readonly userId: string;
  readonly name: string;
  private readonly db: Dexie;
  private readonly meta: Meta;
  private readonly outbox: Outbox;
  private readonly quarantine: Quarantine;
  private readonly log: Log;
  private readonly own: Own;
  private readonly maxOwnWrites: number;
  /** Bytes written to IndexedDB by this instance (for tests and benchmarks). */
  readonly writeStats: StoreWriteStats = { meta: 0, log: 0, outbox: 0, own: 0, baseWrites: 0 };
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private clientIdValue = '';
  /** Seqs this instance appended whose change notification has not been seen yet. */
  private readonly ownAppends = new Set<number>();
  /**
   * The base generation as last read by {@link append}; cleared by every change of `meta` this
   * process sees (own or another instance's, announced synchronously when it commits) and by a
   * failed append, so that the next append reads it again.
   */
  private knownGeneration: number | undefined;
  private foreignMeta = 0;
  /**
   * The change sets of this instance's read-write transactions: a change notification with any other
   * object came from another connection (another tab, or another instance), and counts as foreign.
   * Only this connection's own transactions are known to be announced before the next one starts.
   */
  private readonly ownParts = new WeakSet<object>();
  private closed = false;

  private constructor(db: Dexie, userId: string, maxOwnWrites: number) {
    this.db = db;
    this.userId = userId;
    this.name = db.name;
    this.meta = db.table('meta');
    this.outbox = db.table('outbox');
    this.quarantine = db.table('quarantine');
    this.log = db.table('log');
    this.own = db.table('own');
    this.maxOwnWrites = maxOwnWrites;
  }

  /**
   * Opens (creating if needed) the user's database and makes sure the device has a client id.
   * Throws {@link StorageError} when IndexedDB cannot be opened.
   *
   * @example
   * ```ts
   * const store = await LocalStore.open({ userId: session.user.id });
   * ```
   */
  static async open(options: LocalStoreOptions): Promise<LocalStore> {
    const db = createDexie(options);
    try {
      await db.open();
    } catch (e) {
      db.close();
      throw toStorageError(`opening the local database "${db.name}"`, e);
    }
    const store = new LocalStore(db, options.userId, Math.max(0, options.maxOwnWrites ?? MAX_OWN_WRITES));
    Dexie.on('storagemutated', store.onStorageMutated);
    return store;
  }

  /**
   * How many changes of `meta` made through another connection (another tab or instance) this
   * instance has been told of. An append whose generation was not read (`generationChecked: false`) was appended on the
   * generation it reports unless this count moved between just before the append and the time the
   * reader learns the stored generation changed.
   */
  get foreignMetaChanges(): number {
    return this.foreignMeta;
  }

  /** This device's random, persisted client id (stable across reloads; shared by tabs). */
  get clientId(): string {
    return this.clientIdValue;
  }

  /**
   * Reads the base and the whole outbox in one IndexedDB transaction, validating every record.
   * Invalid records are moved to the `quarantine` table (a bad base is replaced by the empty document
   * with a null token, so the next pull restores it) and reported in `problems`; the rest is returned.
   *
   * @example
   * ```ts
   * const { base, entries, problems } = await store.load();
   * ```
   */
  async load(): Promise<StoreSnapshot> {
    this.assertOpen();
    try {
      const clean = await this.loadClean();
      if (clean !== undefined) {
        if (clean.markGeneration !== undefined) {
          // validated now: the next start need not validate it again (a mark of a generation that
          // was replaced in the meantime matches nothing)
          const mark = {
            generation: clean.markGeneration,
            validation: DOC_VALIDATION,
          } satisfies BaseMarkRecord;
          await this.rw([this.meta], () => this.putMeta(mark, META_BASE_MARK));
        }
        return clean.snapshot;
      }
    } catch (e) {
      throw toStorageError('reading the local database', e);
    }
    return this.loadRepairing();
  }

  /**
   * {@link load} when nothing needs repairing: every record read at once, in one read-only
   * transaction (one round trip instead of one per record). `undefined` when something must be
   * quarantined or created (then {@link loadRepairing} reads again and repairs, in a read-write one).
   */
  private async loadClean(): Promise<{ snapshot: StoreSnapshot; markGeneration?: number } | undefined> {
    return this.db.transaction('r', [this.meta, this.outbox, this.log], async () => {
      const { versionRaw, baseRaw, markRaw, clientRaw, logRaw, rawEntries } = await this.readStart();
      const client = clientRecordSchema.safeParse(clientRaw);
      if (!client.success) return undefined;
      let base: BaseRecord = { doc: EMPTY_DOC, updatedAt: null, generation: generationOf(versionRaw) };
      let markGeneration: number | undefined;
      if (baseRaw !== undefined || logRaw.length > 0) {
        const checked = assembleBase(baseRaw, markRaw, logRaw, versionRaw);
        if (typeof checked === 'string') return undefined;
        base = checked.base;
        markGeneration = checked.storedGeneration;
      }
      const entries: OutboxEntry[] = [];
      for (const raw of rawEntries) {
        const parsed = outboxEntrySchema.safeParse(raw);
        if (!parsed.success) return undefined;
        entries.push(parsed.data);
      }
      this.clientIdValue = client.data.clientId;
      const snapshot: StoreSnapshot = { base, entries, problems: [] };
      return markGeneration === undefined ? { snapshot } : { snapshot, markGeneration };
    });
  }

  /** The records a start-up reads, all requested at once (inside a transaction over meta, outbox and log). */
  private async readStart(): Promise<{
    versionRaw: MetaValue | undefined;
    baseRaw: MetaValue | undefined;
    markRaw: MetaValue | undefined;
    clientRaw: MetaValue | undefined;
    logRaw: unknown[];
    rawEntries: unknown[];
  }> {
    const [metaRaw, logRaw, rawEntries] = await Promise.all([
      this.meta.bulkGet([META_BASE_VERSION, META_BASE, META_BASE_MARK, META_CLIENT]),
      this.log.toArray() as Promise<unknown[]>,
      this.outbox.toArray() as Promise<unknown[]>,
    ]);
    const [versionRaw, baseRaw, markRaw, clientRaw] = metaRaw;
    return { versionRaw, baseRaw, markRaw, clientRaw, logRaw, rawEntries };
  }

  /** {@link load}, quarantining what is invalid and creating what is missing, in one read-write transaction. */
  private async loadRepairing(): Promise<StoreSnapshot> {
    const problems: StorageError[] = [];
    const now = new Date().toISOString();
    try {
      return await this.rw([this.meta, this.outbox, this.quarantine, this.log], async () => {
        const putAside = async (
          source: QuarantineRecord['source'],
          key: string,
          record: unknown,
          reason: string,
        ) => {
          await this.quarantine.add({ source, key, record, reason, quarantinedAt: now });
        };
        const { versionRaw, baseRaw, markRaw, clientRaw, logRaw, rawEntries } = await this.readStart();
        const lastGeneration = generationOf(versionRaw);
        let base: BaseRecord = { doc: EMPTY_DOC, updatedAt: null, generation: lastGeneration };
        if (baseRaw !== undefined || logRaw.length > 0) {
          const checked = assembleBase(baseRaw, markRaw, logRaw, versionRaw);
          if (typeof checked === 'string') {
            if (baseRaw !== undefined) await putAside('meta', META_BASE, baseRaw, checked);
            for (const r of logRaw) await putAside('log', logKeyOf(r), r, checked);
            const generation = lastGeneration + 1;
            await this.meta.delete(META_BASE);
            await this.meta.delete(META_BASE_MARK);
            await this.log.clear();
            await this.meta.put(
              { generation, updatedAt: null } satisfies BaseVersionRecord,
              META_BASE_VERSION,
            );
            base = { doc: EMPTY_DOC, updatedAt: null, generation };
            problems.push(
              new StorageError(
                `the stored base document is invalid (${checked}); it was moved to the quarantine and ` +
                  'userdb continues from an empty base until the next pull',
              ),
            );
          } else {
            base = checked.base;
            if (checked.storedGeneration !== undefined) {
              // validated now: the next start need not validate it again
              await this.putMeta(
                {
                  generation: checked.storedGeneration,
                  validation: DOC_VALIDATION,
                } satisfies BaseMarkRecord,
                META_BASE_MARK,
              );
            }
          }
        }
        const client = clientRecordSchema.safeParse(clientRaw);
        if (client.success) {
          this.clientIdValue = client.data.clientId;
        } else {
          if (clientRaw !== undefined) {
            await putAside('meta', META_CLIENT, clientRaw, describeIssues(client.error));
            problems.push(
              new StorageError('the stored client record is invalid; it was quarantined and replaced'),
            );
          }
          const fresh: ClientRecord = { clientId: crypto.randomUUID(), nextBatchSeq: 1 };
          await this.meta.put({ ...fresh }, META_CLIENT);
          this.clientIdValue = fresh.clientId;
        }
        const entries: OutboxEntry[] = [];
        const rawKeys = await this.outbox.toCollection().primaryKeys();
        for (let i = 0; i < rawEntries.length; i++) {
          const raw = rawEntries[i];
          const key = rawKeys[i] as number;
          const parsed = outboxEntrySchema.safeParse(raw);
          if (parsed.success) {
            entries.push(parsed.data);
            continue;
          }
          const reason = describeIssues(parsed.error);
          await putAside('outbox', String(key), raw, reason);
          await this.outbox.delete(key);
          problems.push(
            new StorageError(`outbox entry ${key} is invalid (${reason}); it was moved to the quarantine`),
          );
        }
        return { base, entries, problems };
      });
    } catch (e) {
      throw toStorageError('reading the local database', e);
    }
  }

  /**
   * The outbox entries with a seq above `seq` and the current base generation, read in one
   * transaction; `undefined` when one of them fails validation (then call {@link load}). With
   * `fromGeneration`, also the log records after it; with `pick` as well, the outbox entries `pick`
   * asks for once it has seen them (any seq, read by key: O(entries picked)).
   */
  async readSince(seq: number, fromGeneration?: number, pick?: PickEntries): Promise<OutboxTail | undefined> {
    this.assertOpen();
    try {
      return await this.db.transaction('r', this.meta, this.outbox, this.log, async () => {
        const version = await this.meta.get(META_BASE_VERSION);
        const raw: unknown[] = await this.outbox.where(':id').above(seq).toArray();
        const entries: OutboxEntry[] = [];
        for (const r of raw) {
          const parsed = outboxEntrySchema.safeParse(r);
          if (!parsed.success) return undefined;
          entries.push(parsed.data);
        }
        const generation = generationOf(version);
        const tail: OutboxTail = { generation, pushedFrom: pushedFromOf(version), entries };
        if (fromGeneration !== undefined && fromGeneration < generation) {
          const rawLog: unknown[] = await this.log.where(':id').above(fromGeneration).toArray();
          const log: LogRecord[] = [];
          for (const r of rawLog) {
            const parsed = logRecordSchema.safeParse(r);
            if (!parsed.success) break;
            log.push(parsed.data);
          }
          const covers =
            log.length === generation - fromGeneration &&
            log.every((r, i) => r.generation === fromGeneration + 1 + i);
          tail.log = covers ? log : undefined;
        } else if (fromGeneration !== undefined) {
          tail.log = [];
        }
        if (pick !== undefined && tail.log !== undefined && tail.log.length > 0) {
          const picked = new Map<number, PatchOp[] | null>();
          for (let want = pick(tail.log, picked); want.length > 0; want = pick(tail.log, picked)) {
            const fresh = want.filter((s) => !picked.has(s));
            if (fresh.length === 0) break;
            const got: unknown[] = await this.outbox.bulkGet(fresh);
            for (const [i, s] of fresh.entries()) {
              const parsed = outboxEntrySchema.safeParse(got[i]);
              picked.set(s, parsed.success && parsed.data.seq === s ? parsed.data.ops : null);
            }
          }
          tail.picked = picked;
        }
        return tail;
      });
    } catch (e) {
      throw toStorageError('reading the outbox', e);
    }
  }

  /**
   * Appends one outbox entry in its own IndexedDB transaction and resolves once it has committed.
   * Cost: usually ONE IndexedDB request (the insert). `previousSeq` comes from the outbox's key
   * generator (the new seq minus one: any row another tab or instance appended meanwhile, even one
   * already pushed and deleted, shows up as a gap). The base generation is read in the same
   * transaction only when it may have changed since this instance last read it (a change of `meta`
   * was announced since, or it was never read); otherwise the remembered one is returned with
   * `generationChecked: false`: another connection's change (another tab) may not have been
   * announced yet (see {@link foreignMetaChanges}).
   * Throws {@link StorageError} (e.g. quota exceeded): then nothing was written.
   *
   * @example
   * ```ts
   * const { seq } = await store.append([{ op: 'remove', path: '/tables/projects/rows/p_1' }]);
   * ```
   */
  async append(ops: PatchOp[]): Promise<AppendResult> {
    this.assertOpen();
    // Dexie creates a transaction's IndexedDB transaction a microtask after it was asked for: wait
    // as long, so that transactions asked for before this append are created (and run) before it
    await undefined;
    const direct = this.appendDirect(ops);
    if (direct !== undefined) return direct;
    let added: number | undefined;
    try {
      return await this.rw([this.meta, this.outbox], async () => {
        const record = { ops, createdAt: new Date().toISOString() };
        this.count('outbox', record);
        const known = this.knownGeneration;
        // both requests are queued at once: one round trip
        const [seq, version] = await Promise.all([
          this.outbox.add(record),
          known === undefined ? this.meta.get(META_BASE_VERSION) : undefined,
        ]);
        let generation: number;
        let checked = true;
        if (known === undefined) {
          generation = generationOf(version);
          // a change of meta committed after this transaction clears it again
          this.knownGeneration = generation;
        } else if (this.knownGeneration !== known) {
          // a change of meta was announced while this transaction waited for its turn (this Dexie
          // callback runs when the transaction is created, the insert when it starts): read it now
          generation = generationOf(await this.meta.get(META_BASE_VERSION));
          this.knownGeneration = generation;
        } else {
          generation = known;
          checked = false;
        }
        added = seq;
        this.ownAppends.add(seq);
        let recent = RECENT_COMMITS.get(this.name);
        if (recent === undefined) {
          recent = new Map();
          RECENT_COMMITS.set(this.name, recent);
        }
        recent.set(seq, { clientId: this.clientIdValue, generation, checked, ops });
        return { seq, previousSeq: seq - 1, generation, generationChecked: checked };
      });
    } catch (e) {
      this.knownGeneration = undefined;
      throw toStorageError('saving the change to the local outbox', e);
    } finally {
      if (added !== undefined) {
        // Dexie fired the change notification synchronously when the transaction completed, so both
        // bookkeeping entries have served their purpose.
        this.ownAppends.delete(added);
        const recent = RECENT_COMMITS.get(this.name);
        recent?.delete(added);
        if (recent?.size === 0) RECENT_COMMITS.delete(this.name);
      }
    }
  }

  /**
   * {@link append} on the IndexedDB connection directly: one native transaction over `meta` and
   * `outbox` with the insert (and the read of the generation when it may have changed), announced on
   * Dexie's `storagemutated` channel exactly as Dexie announces its own commits (same parts, so
   * other instances and tabs learn of it the same way). Dexie's transaction machinery (zones, its
   * promise and middleware layers) costs more than the IndexedDB request itself on the write path.
   * `undefined` when the connection is not open (then the Dexie path opens it again).
   */
  private appendDirect(ops: PatchOp[]): Promise<AppendResult> | undefined {
    if (!this.db.isOpen()) return undefined;
    let tx: IDBTransaction;
    try {
      tx = this.db.backendDB().transaction(['meta', 'outbox'], 'readwrite', { durability: 'relaxed' });
    } catch {
      return undefined; // closing, or closed for a version change: the Dexie path handles it
    }
    return new Promise<AppendResult>((resolve, reject) => {
      const record = { ops, createdAt: new Date().toISOString() };
      const known = this.knownGeneration;
      let generation = known ?? 0;
      let checked = known === undefined;
      let seq: number | undefined;
      const readGeneration = () => {
        const get = tx.objectStore('meta').get(META_BASE_VERSION);
        get.onsuccess = () => {
          generation = generationOf(get.result as MetaValue | undefined);
          checked = true;
          // a change of meta committed after this transaction clears it again
          this.knownGeneration = generation;
        };
      };
      const cleanup = () => {
        if (seq === undefined) return;
        this.ownAppends.delete(seq);
        const recent = RECENT_COMMITS.get(this.name);
        recent?.delete(seq);
        if (recent?.size === 0) RECENT_COMMITS.delete(this.name);
      };
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        this.knownGeneration = undefined;
        cleanup();
        reject(toStorageError('saving the change to the local outbox', e));
      };
      tx.oncomplete = () => {
        if (seq === undefined) {
          fail(new Error('the outbox insert returned no key'));
          return;
        }
        let recent = RECENT_COMMITS.get(this.name);
        if (recent === undefined) {
          recent = new Map();
          RECENT_COMMITS.set(this.name, recent);
        }
        recent.set(seq, { clientId: this.clientIdValue, generation, checked, ops });
        // what Dexie's observability layer records for one auto-keyed insert
        const parts: Record<string, RangeSet> = {
          [`idb://${this.name}/outbox/`]: new RangeSet().addKeys([seq]),
          [`idb://${this.name}/outbox/:dels`]: new RangeSet(),
        };
        this.ownParts.add(parts);
        try {
          Dexie.on.storagemutated.fire(parts);
        } finally {
          cleanup();
        }
        resolve({ seq, previousSeq: seq - 1, generation, generationChecked: checked });
      };
      tx.onabort = () => fail(tx.error ?? new Error('the transaction was aborted'));
      try {
        this.count('outbox', record);
        if (known === undefined) readGeneration();
        const add = tx.objectStore('outbox').add(record);
        add.onsuccess = () => {
          seq = add.result as number;
          this.ownAppends.add(seq);
          // a change of meta was announced while this transaction waited for its turn: read it now
          if (known !== undefined && this.knownGeneration !== known) readGeneration();
        };
        add.onerror = (event) => {
          event.preventDefault(); // abort explicitly below, with the request's error
          fail(add.error);
          try {
            tx.abort();
          } catch {
            // already finished
          }
        };
      } catch (e) {
        try {
          tx.abort();
        } catch {
          // already finished
        }
        tx.onabort = null;
        fail(e);
      }
    });
  }

  /**
   * Outbox entries in commit order, starting after `afterSeq` (default: from the first), stopping
   * before the total size of their ops would exceed `maxBytes` (UTF-8 JSON; the first entry is always
   * included so an oversized entry is still seen).
   *
   * @example
   * ```ts
   * const batch = await store.readOutbox({ maxBytes: 512 * 1024 });
   * ```
   */
  async readOutbox(options: { afterSeq?: number; maxBytes?: number } = {}): Promise<OutboxEntry[]> {
    this.assertOpen();
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    const out: OutboxEntry[] = [];
    const cursor = options.afterSeq ?? 0;
    let total = 0;
    for (;;) {
      const tail = await this.readSince(cursor);
      if (tail === undefined) {
        await this.load();
        continue;
      }
      for (const entry of tail.entries) {
        const size = entryBytes(entry);
        if (out.length > 0 && total + size > maxBytes) return out;
        total += size;
        out.push(entry);
      }
      return out;
    }
  }

  /**
   * The current base, validated (an invalid one is quarantined via {@link load}).
   *
   * @example
   * ```ts
   * const { doc, updatedAt } = await store.readBase();
   * ```
   */
  async readBase(): Promise<BaseRecord> {
    this.assertOpen();
    let raw: { base: unknown; mark: unknown; log: unknown[]; version: MetaValue | undefined };
    try {
      raw = await this.db.transaction('r', this.meta, this.log, async () => ({
        base: await this.meta.get(META_BASE),
        mark: await this.meta.get(META_BASE_MARK),
        log: await this.log.toArray(),
        version: await this.meta.get(META_BASE_VERSION),
      }));
    } catch (e) {
      throw toStorageError('reading the base document', e);
    }
    if (raw.base === undefined && raw.log.length === 0) {
      return { doc: EMPTY_DOC, updatedAt: null, generation: generationOf(raw.version) };
    }
    const checked = assembleBase(raw.base, raw.mark, raw.log, raw.version);
    return typeof checked === 'string' ? (await this.load()).base : checked.base;
  }

  /**
   * After a push or a pull by delta, in ONE IndexedDB transaction: deletes the outbox entries
   * `seq <= dropUpToSeq` (and `<= acked` of own changes), appends `changes` to the log (each a new
   * base generation), rewrites the remaining outbox entries through `rewrite` (synchronous; an
   * entry rewritten to no ops is deleted), and stores the new token and `nextBatchSeq` if given.
   * With `own`, also the bookkeeping of own cell writes ({@link OwnWriteChanges}); resolves with
   * the cells found overridden (each once: they are forgotten in the same transaction).
   * The stored base document is not rewritten: what this writes follows the size of the changes.
   *
   * @example
   * ```ts
   * await store.appendLog({ changes: [{ before, after, ops, keyed: null, clientId, batchSeq: 7, acked: 7, exact: true }] });
   * ```
   */
  async appendLog(
    args: {
      changes: readonly LogChange[];
      dropUpToSeq?: number | undefined;
      nextBatchSeq?: number | undefined;
      own?: OwnWriteChanges | undefined;
    },
    rewrite?: (entries: OutboxEntry[]) => { seq: number; ops: PatchOp[] }[],
  ): Promise<{ overridden: string[] }> {
    this.assertOpen();
    try {
      return await this.rw([this.meta, this.outbox, this.log, this.own], async () => {
        let generation = generationOf(await this.meta.get(META_BASE_VERSION));
        let updatedAt: string | null = null;
        let dropped = 0;
        const drop = async (upTo: number) => {
          if (upTo <= dropped) return;
          await this.outbox.where(':id').belowOrEqual(upTo).delete();
          dropped = upTo;
        };
        if (args.dropUpToSeq !== undefined) await drop(args.dropUpToSeq);
        for (const change of args.changes) if (change.acked !== null) await drop(change.acked);
        if (rewrite !== undefined) {
          const entries = validEntries(await this.outbox.toArray());
          const seqs = new Set(entries.map((e) => e.seq));
          for (const r of rewrite(entries)) {
            if (!seqs.has(r.seq)) continue;
            if (r.ops.length === 0) await this.outbox.delete(r.seq);
            else {
              this.writeStats.outbox += byteLength(r.ops);
              await this.outbox.update(r.seq, { ops: r.ops });
            }
          }
        }
        for (const change of args.changes) {
          generation += 1;
          const record: LogRecord = { ...change, generation };
          this.count('log', record);
          await this.log.put(record);
          updatedAt = change.after;
        }
        if (args.changes.length > 0) {
          await this.putMeta({ generation, updatedAt } satisfies BaseVersionRecord, META_BASE_VERSION);
        }
        if (args.nextBatchSeq !== undefined) await this.writeNextBatchSeq(args.nextBatchSeq);
        return { overridden: args.own === undefined ? [] : await this.updateOwnWrites(args.own) };
      });
    } catch (e) {
      throw toStorageError('storing the acknowledged changes', e);
    }
  }

  /** Inside a transaction on `own`: see {@link OwnWriteChanges}. O(cells named) + pruning. */
  private async updateOwnWrites(own: OwnWriteChanges): Promise<string[]> {
    const overridden: string[] = [];
    const checks = own.checks ?? [];
    if (checks.length > 0) {
      const found: unknown[] = await this.own.bulkGet(checks.map((c) => c.cell));
      for (const [i, c] of checks.entries()) {
        const parsed = ownWriteRecordSchema.safeParse(found[i]);
        if (!parsed.success || !jsonEqual(parsed.data.value, c.expected)) continue;
        if (!overridden.includes(c.cell)) overridden.push(c.cell);
      }
      if (overridden.length > 0) await this.own.bulkDelete(overridden);
    }
    for (const cell of own.overwritten ?? []) {
      if (cell === '') await this.own.clear();
      else if (cell.endsWith('/')) await this.own.where('cell').startsWith(cell).delete();
      else await this.own.delete(cell);
    }
    const writes = own.writes ?? [];
    if (writes.length > 0) {
      const seq = own.seq ?? 0;
      const records = writes.map((w) => ({ cell: w.cell, value: w.value, seq }));
      this.count('own', records);
      await this.own.bulkPut(records);
      const n = await this.own.count();
      if (n > this.maxOwnWrites) {
        const oldest = await this.own
          .orderBy('seq')
          .limit(n - this.maxOwnWrites)
          .primaryKeys();
        await this.own.bulkDelete(oldest);
      }
    }
    return overridden;
  }

  /**
   * The own cell writes remembered, oldest first (see {@link OwnWriteRecord}; for diagnostics).
   *
   * @example
   * ```ts
   * const remembered = await store.readOwnWrites();
   * ```
   */
  async readOwnWrites(): Promise<OwnWriteRecord[]> {
    this.assertOpen();
    try {
      const raw: unknown[] = await this.own.orderBy('seq').toArray();
      const out: OwnWriteRecord[] = [];
      for (const r of raw) {
        const parsed = ownWriteRecordSchema.safeParse(r);
        if (parsed.success) out.push(parsed.data);
      }
      return out;
    } catch (e) {
      throw toStorageError('reading the own writes', e);
    }
  }

  /**
   * Folds the log up to `generation` into the stored base: `doc` must be the base of that
   * generation (the sync engine keeps it in memory). One IndexedDB transaction; a log that moved
   * on meanwhile is folded only up to `generation`; nothing happens when `generation` is no longer
   * in the log. Runs in the background, never on the write path.
   *
   * @example
   * ```ts
   * await store.compact({ generation, doc, updatedAt });
   * ```
   */
  async compact(args: { generation: number; doc: CompactDoc; updatedAt: string | null }): Promise<boolean> {
    this.assertOpen();
    try {
      return await this.rw([this.meta, this.log], async () => {
        const record: unknown = await this.log.get(args.generation);
        const parsed = logRecordSchema.safeParse(record);
        if (!parsed.success || parsed.data.after !== args.updatedAt) return false;
        this.writeStats.baseWrites += 1;
        await this.putMeta(
          { doc: args.doc, updatedAt: args.updatedAt, generation: args.generation } satisfies BaseRecord,
          META_BASE,
        );
        await this.putMeta(
          { generation: args.generation, validation: DOC_VALIDATION } satisfies BaseMarkRecord,
          META_BASE_MARK,
        );
        await this.log.where(':id').belowOrEqual(args.generation).delete();
        return true;
      });
    } catch (e) {
      throw toStorageError('compacting the local base', e);
    }
  }

  /** Number of log records and the UTF-8 bytes of their ops (what a compaction would fold). */
  async logSize(): Promise<{ records: number; bytes: number }> {
    this.assertOpen();
    try {
      const records: unknown[] = await this.log.toArray();
      let bytes = 0;
      for (const r of records) bytes += byteLength((r as { ops?: unknown }).ops ?? null);
      return { records: records.length, bytes };
    } catch (e) {
      throw toStorageError('reading the local log', e);
    }
  }

  /**
   * After a successful push: stores the new base and its token and deletes the pushed entries
   * (`seq <= upToSeq`) in one IndexedDB transaction; optionally stores the next batch sequence too.
   *
   * Pass `exact: true` when `newBase` is exactly the stored base with the pushed entries applied (the
   * server accepted the patch on the very document of the stored base): then databases whose view
   * already includes those entries keep their view as it is instead of rebuilding it (O(document)).
   *
   * @example
   * ```ts
   * await store.commitPush({ newBase, updatedAt: res.updated_at, upToSeq: batch.at(-1)!.seq, nextBatchSeq: n + 1, exact: true });
   * ```
   */
  async commitPush(args: {
    newBase: CompactDoc;
    updatedAt: string;
    upToSeq: number;
    nextBatchSeq?: number;
    exact?: boolean;
    /** The index-based ops the server applied: then they are logged instead of storing `newBase`. */
    ops?: PatchOp[] | undefined;
    /** The token `ops` were applied on (with `ops`). */
    before?: string | null | undefined;
    /** With `ops`: the cells the push wrote, remembered for `overridden` reports. */
    ownWrites?: readonly { cell: string; value: Json }[] | undefined;
  }): Promise<void> {
    this.assertOpen();
    if (args.ops !== undefined) {
      await this.appendLog({
        own:
          args.ownWrites === undefined || args.ownWrites.length === 0
            ? undefined
            : { writes: args.ownWrites, seq: args.upToSeq },
        changes: [
          {
            before: args.before ?? null,
            after: args.updatedAt,
            ops: args.ops,
            keyed: null,
            clientId: this.clientIdValue,
            batchSeq: args.upToSeq,
            acked: args.upToSeq,
            exact: args.exact === true,
          },
        ],
        nextBatchSeq: args.nextBatchSeq,
      });
      return;
    }
    try {
      await this.rw([this.meta, this.outbox, this.log], async () => {
        await this.writeBase(args.newBase, args.updatedAt, args.exact === true ? args.upToSeq : undefined);
        await this.outbox.where(':id').belowOrEqual(args.upToSeq).delete();
        if (args.nextBatchSeq !== undefined) await this.writeNextBatchSeq(args.nextBatchSeq);
      });
    } catch (e) {
      throw toStorageError('storing the pushed document', e);
    }
  }

  /**
   * After a pull: stores a new base and its token (the outbox is kept; it is replayed on top).
   *
   * @example
   * ```ts
   * await store.replaceBase(pulled.doc, pulled.updated_at);
   * ```
   */
  async replaceBase(doc: CompactDoc, updatedAt: string | null): Promise<void> {
    this.assertOpen();
    try {
      await this.rw([this.meta, this.log], async () => {
        await this.writeBase(doc, updatedAt);
      });
    } catch (e) {
      throw toStorageError('storing the pulled document', e);
    }
  }

  /**
   * Moves outbox entries that cannot be replayed (malformed keyed ops) to the quarantine.
   *
   * @example
   * ```ts
   * await store.quarantineEntries([{ seq: 7, reason: 'not a keyed userdb path' }]);
   * ```
   */
  async quarantineEntries(items: readonly { seq: number; reason: string }[]): Promise<void> {
    this.assertOpen();
    if (items.length === 0) return;
    const now = new Date().toISOString();
    try {
      await this.rw([this.outbox, this.quarantine], async () => {
        for (const { seq, reason } of items) {
          const record: unknown = await this.outbox.get(seq);
          if (record === undefined) continue;
          await this.quarantine.add({
            source: 'outbox',
            key: String(seq),
            record,
            reason,
            quarantinedAt: now,
          });
          await this.outbox.delete(seq);
        }
      });
    } catch (e) {
      throw toStorageError('moving outbox entries to the quarantine', e);
    }
  }

  /** The base generation currently stored (cheap: reads a tiny record). */
  async readGeneration(): Promise<number> {
    this.assertOpen();
    try {
      return generationOf(await this.meta.get(META_BASE_VERSION));
    } catch (e) {
      throw toStorageError('reading the local database', e);
    }
  }

  /** The persisted next batch sequence number of this device (starts at 1). */
  async getNextBatchSeq(): Promise<number> {
    this.assertOpen();
    try {
      const parsed = clientRecordSchema.safeParse(await this.meta.get(META_CLIENT));
      return parsed.success ? parsed.data.nextBatchSeq : 1;
    } catch (e) {
      throw toStorageError('reading the local database', e);
    }
  }

  /** Persists the next batch sequence number of this device. */
  async setNextBatchSeq(next: number): Promise<void> {
    this.assertOpen();
    try {
      await this.rw([this.meta], () => this.writeNextBatchSeq(next));
    } catch (e) {
      throw toStorageError('storing the batch sequence', e);
    }
  }

  // ---- sync engine hooks (used by src/sync through its SyncStore port) -------------------------

  /**
   * Number of outbox entries (cheap: an index count).
   *
   * @example
   * ```ts
   * const pending = await store.countOutbox();
   * ```
   */
  async countOutbox(): Promise<number> {
    this.assertOpen();
    try {
      return await this.outbox.count();
    } catch (e) {
      throw toStorageError('reading the outbox', e);
    }
  }

  /**
   * The first and last outbox seq, both 0 when the outbox is empty.
   *
   * @example
   * ```ts
   * const { first, last } = await store.outboxBounds();
   * ```
   */
  async outboxBounds(): Promise<{ first: number; last: number }> {
    this.assertOpen();
    try {
      return await this.db.transaction('r', this.outbox, async () => {
        const first = await this.outbox.orderBy(':id').firstKey();
        const last = await this.outbox.orderBy(':id').lastKey();
        return { first: typeof first === 'number' ? first : 0, last: typeof last === 'number' ? last : 0 };
      });
    } catch (e) {
      throw toStorageError('reading the outbox', e);
    }
  }

  /**
   * The valid outbox entries with `seq <= upToSeq`, in order (invalid ones are left for {@link load}).
   *
   * @example
   * ```ts
   * const batch = await store.readOutboxUpTo(lastPushedSeq); // resend with the same batch number
   * ```
   */
  async readOutboxUpTo(upToSeq: number): Promise<OutboxEntry[]> {
    this.assertOpen();
    try {
      const raw: unknown[] = await this.outbox.where(':id').belowOrEqual(upToSeq).toArray();
      return validEntries(raw);
    } catch (e) {
      throw toStorageError('reading the outbox', e);
    }
  }

  /**
   * After a pull, in ONE IndexedDB transaction: deletes the entries `seq <= dropUpToSeq` (a batch the
   * server had already applied), reads the remaining valid entries, passes them to `rewrite`
   * (synchronous), stores what it returns (an entry rewritten to no ops is deleted) and the new base.
   * So the outbox is always rebased on the stored base, and each conflict is found once.
   *
   * @example
   * ```ts
   * await store.rebaseOutbox({ doc, updatedAt }, (entries) => entries.map((e) => ({ seq: e.seq, ops: e.ops })));
   * ```
   */
  async rebaseOutbox(
    args: { doc: CompactDoc; updatedAt: string; dropUpToSeq?: number | undefined },
    rewrite: (entries: OutboxEntry[]) => { seq: number; ops: PatchOp[] }[],
  ): Promise<void> {
    this.assertOpen();
    try {
      await this.rw([this.meta, this.outbox, this.log], async () => {
        if (args.dropUpToSeq !== undefined)
          await this.outbox.where(':id').belowOrEqual(args.dropUpToSeq).delete();
        const entries = validEntries(await this.outbox.toArray());
        const seqs = new Set(entries.map((e) => e.seq));
        for (const r of rewrite(entries)) {
          if (!seqs.has(r.seq)) continue;
          if (r.ops.length === 0) await this.outbox.delete(r.seq);
          else await this.outbox.update(r.seq, { ops: r.ops });
        }
        await this.writeBase(args.doc, args.updatedAt);
      });
    } catch (e) {
      throw toStorageError('storing the pulled document', e);
    }
  }

  /**
   * Deletes one quarantined record (after the app retried or discarded a held outbox entry).
   *
   * @example
   * ```ts
   * await store.deleteQuarantined(3);
   * ```
   */
  async deleteQuarantined(id: number): Promise<void> {
    this.assertOpen();
    try {
      await this.quarantine.delete(id);
    } catch (e) {
      throw toStorageError('deleting a quarantined record', e);
    }
  }

  /** The quarantined records, oldest first (for diagnostics and recovery tools). */
  async readQuarantine(): Promise<QuarantineRecord[]> {
    this.assertOpen();
    try {
      return await this.quarantine.toArray();
    } catch (e) {
      throw toStorageError('reading the quarantine', e);
    }
  }

  /**
   * Calls `listener` after any committed change of `meta` or `outbox`, by this instance or by another
   * one on the same IndexedDB (another tab: through Dexie's `storagemutated` / BroadcastChannel).
   * Returns the unsubscribe function.
   *
   * @example
   * ```ts
   * const off = store.onChange((c) => { if (c.outbox) schedulePush(); });
   * ```
   */
  onChange(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Closes the database and stops listening for changes. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Dexie.on.storagemutated.unsubscribe(this.onStorageMutated);
    this.listeners.clear();
    this.db.close();
  }

  private readonly onStorageMutated = (parts: Record<string, unknown>): void => {
    if (this.closed) return;
    const prefix = `idb://${this.name}/`;
    let meta = false;
    let outbox = false;
    let appendedKeys: number[] | undefined = [];
    const local = this.ownParts.has(parts);
    for (const part of Object.keys(parts)) {
      if (part === 'all') {
        this.knownGeneration = undefined;
        meta = true;
        outbox = true;
        appendedKeys = undefined;
      } else if (part.startsWith(prefix)) {
        const rest = part.slice(prefix.length);
        const table = rest.split('/', 1)[0];
        if (table === 'meta') {
          meta = true;
          this.knownGeneration = undefined;
        } else if (table === 'outbox') outbox = true;
        if (rest === 'outbox/:dels' && isEmptyRange(parts[part])) continue;
        const keys = rest === 'outbox/' ? rangeKeys(parts[part]) : undefined;
        appendedKeys =
          keys === undefined || appendedKeys === undefined ? undefined : [...appendedKeys, ...keys];
      }
    }
    if (!meta && !outbox) return;
    if (meta && !local) this.foreignMeta += 1;
    let change: StoreChange = { meta, outbox, ownAppendsOnly: false };
    if (appendedKeys !== undefined && appendedKeys.length > 0) {
      if (appendedKeys.every((k) => this.ownAppends.has(k))) {
        for (const k of appendedKeys) this.ownAppends.delete(k);
        change = { ...change, ownAppendsOnly: true };
      } else {
        const commits = this.recentCommitsOf(appendedKeys);
        if (commits !== undefined) change = { ...change, commits };
      }
    }
    for (const listener of [...this.listeners]) listener(change);
  };

  /**
   * The ops of outbox rows just appended by another instance in this process (on the very same
   * database: same client id), so that it need not read them back; `undefined` if any is unknown.
   */
  private recentCommitsOf(keys: readonly number[]): AppendedCommits | undefined {
    const recent = RECENT_COMMITS.get(this.name);
    if (recent === undefined) return undefined;
    const entries: { seq: number; ops: PatchOp[] }[] = [];
    let generation: number | undefined;
    let assumed = false;
    for (const seq of [...keys].sort((a, b) => a - b)) {
      const commit = recent.get(seq);
      if (commit === undefined || commit.clientId !== this.clientIdValue) return undefined;
      if (generation !== undefined && generation !== commit.generation) return undefined;
      generation = commit.generation;
      if (!commit.checked) assumed = true;
      entries.push({ seq, ops: commit.ops });
    }
    if (generation === undefined) return undefined;
    return assumed ? { generation, generationAssumed: true, entries } : { generation, entries };
  }

  private async writeBase(doc: CompactDoc, updatedAt: string | null, exactPushUpTo?: number): Promise<void> {
    const previous = generationOf(await this.meta.get(META_BASE_VERSION));
    const generation = previous + 1;
    const version: BaseVersionRecord = { generation, updatedAt };
    if (exactPushUpTo !== undefined) version.pushedFrom = { generation: previous, upToSeq: exactPushUpTo };
    this.writeStats.baseWrites += 1;
    await this.putMeta({ doc, updatedAt, generation } satisfies BaseRecord, META_BASE);
    // every document the engine stores was validated (received and parsed, or built by applying
    // checked ops to a validated base): mark it so that start-up need not validate it again
    await this.putMeta({ generation, validation: DOC_VALIDATION } satisfies BaseMarkRecord, META_BASE_MARK);
    await this.putMeta({ ...version }, META_BASE_VERSION);
    await this.log.clear();
  }

  /**
   * A read-write transaction whose change notification this process recognises as its own (see
   * {@link foreignMetaChanges}).
   */
  private rw<T>(tables: DexieTable[], fn: () => Promise<T>): Promise<T> {
    return this.db.transaction('rw', tables, async () => {
      const result = await fn();
      // Dexie announces this transaction's changes with this very object when it commits; another
      // tab's changes arrive as a copy (through a BroadcastChannel)
      const parts = (Dexie.currentTransaction?.idbtrans as { mutatedParts?: unknown } | undefined)
        ?.mutatedParts;
      if (typeof parts === 'object' && parts !== null) this.ownParts.add(parts);
      return result;
    });
  }

  private count(table: 'meta' | 'log' | 'outbox' | 'own', value: unknown): void {
    this.writeStats[table] += byteLength(value);
  }

  private async putMeta(value: object, key: string): Promise<void> {
    this.count('meta', value);
    await this.meta.put(value as MetaValue, key);
  }

  private async writeNextBatchSeq(next: number): Promise<void> {
    const parsed = clientRecordSchema.safeParse(await this.meta.get(META_CLIENT));
    const clientId = parsed.success ? parsed.data.clientId : this.clientIdValue;
    await this.putMeta({ clientId, nextBatchSeq: next } satisfies ClientRecord, META_CLIENT);
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError(`the local database "${this.name}" is closed`);
  }
}

function validEntries(raw: readonly unknown[]): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  for (const r of raw) {
    const parsed = outboxEntrySchema.safeParse(r);
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

/** The keys of a Dexie RangeSet (a tree of `{from, to, l, r, d}` nodes), or undefined if it holds ranges. */
function rangeKeys(ranges: unknown): number[] | undefined {
  const keys: number[] = [];
  const visit = (node: unknown): boolean => {
    if (node === null || node === undefined) return true;
    if (typeof node !== 'object') return false;
    const n = node as { d?: unknown; from?: unknown; to?: unknown; l?: unknown; r?: unknown };
    if (n.d === 0) return true;
    if (typeof n.from !== 'number' || n.from !== n.to) return false;
    keys.push(n.from);
    return visit(n.l) && visit(n.r);
  };
  return visit(ranges) ? keys : undefined;
}

/** True for an empty Dexie RangeSet. */
function isEmptyRange(ranges: unknown): boolean {
  return typeof ranges === 'object' && ranges !== null && (ranges as { d?: unknown }).d === 0;
}

interface RecentCommit {
  clientId: string;
  generation: number;
  checked: boolean;
  ops: PatchOp[];
}

/**
 * Outbox rows being committed in this process, by database name and seq: set inside the appending
 * IndexedDB transaction, read by the other instances' change handlers (which Dexie calls
 * synchronously when that transaction completes), dropped right after.
 */
const RECENT_COMMITS = new Map<string, Map<number, RecentCommit>>();

function pushedFromOf(version: MetaValue | undefined): OutboxTail['pushedFrom'] {
  const from = version?.pushedFrom as { generation?: unknown; upToSeq?: unknown } | undefined;
  if (typeof from?.generation !== 'number' || typeof from.upToSeq !== 'number') return undefined;
  return { generation: from.generation, upToSeq: from.upToSeq };
}

function generationOf(version: MetaValue | undefined): number {
  const g = version?.generation;
  return typeof g === 'number' && Number.isSafeInteger(g) ? g : 0;
}

/**
 * The current base from the stored records: the stored base (validated unless its mark says it was
 * validated at that generation) with the log replayed on it. Returns why it is invalid instead;
 * `storedGeneration` is set when the stored base was validated now (mark it).
 */
function assembleBase(
  baseRaw: unknown,
  markRaw: unknown,
  logRaw: readonly unknown[],
  versionRaw: MetaValue | undefined,
): { base: BaseRecord; storedGeneration: number | undefined } | string {
  let stored: BaseRecord;
  let storedGeneration: number | undefined;
  if (baseRaw === undefined) return 'log records without a base document';
  const shape = baseRecordShape.safeParse(baseRaw);
  if (!shape.success) return `not a userdb base record: ${describeIssues(shape.error)}`;
  const mark = baseMarkSchema.safeParse(markRaw);
  const doc = shape.data.doc as { tables?: unknown } | null;
  if (
    mark.success &&
    mark.data.validation === DOC_VALIDATION &&
    mark.data.generation === shape.data.generation &&
    typeof doc === 'object' &&
    doc !== null &&
    typeof doc.tables === 'object' &&
    doc.tables !== null
  ) {
    stored = {
      doc: shape.data.doc as CompactDoc,
      updatedAt: shape.data.updatedAt,
      generation: shape.data.generation,
    };
  } else {
    const checked = baseIssue(baseRaw);
    if (typeof checked === 'string') return checked;
    stored = checked;
    storedGeneration = checked.generation;
  }
  const records: LogRecord[] = [];
  for (const r of logRaw) {
    const parsed = logRecordSchema.safeParse(r);
    if (!parsed.success) return `log record ${logKeyOf(r)} is invalid: ${describeIssues(parsed.error)}`;
    if (parsed.data.generation > stored.generation) records.push(parsed.data);
  }
  if (records.length === 0) return { base: stored, storedGeneration };
  records.sort((a, b) => a.generation - b.generation);
  let doc2 = stored.doc;
  for (const [i, r] of records.entries()) {
    if (r.generation !== stored.generation + 1 + i)
      return `the log skips generation ${stored.generation + 1 + i}`;
    try {
      doc2 = applyCompact(doc2, r.ops);
    } catch (e) {
      return `log record ${r.generation} does not apply: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  const last = records[records.length - 1] as LogRecord;
  if (last.generation !== generationOf(versionRaw)) return 'the log does not end at the current generation';
  return { base: { doc: doc2, updatedAt: last.after, generation: last.generation }, storedGeneration };
}

function logKeyOf(record: unknown): string {
  const g = (record as { generation?: unknown } | null)?.generation;
  return typeof g === 'number' ? String(g) : '?';
}

function byteLength(value: unknown): number {
  return utf8Length(JSON.stringify(value) ?? '');
}

/** Returns the validated base record, or why it is invalid. */
function baseIssue(raw: unknown): BaseRecord | string {
  const shape = baseRecordShape.safeParse(raw);
  if (!shape.success) return `not a userdb base record: ${describeIssues(shape.error)}`;
  try {
    const doc = parseCompactDoc(shape.data.doc);
    return { doc, updatedAt: shape.data.updatedAt, generation: shape.data.generation };
  } catch (e) {
    return `not a valid userdb document: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Deletes a user's local database (base, outbox, quarantine). Close every open database of that user
 * first: an open connection blocks the deletion until it closes.
 *
 * @example
 * ```ts
 * await deleteLocalDatabase('u1');
 * ```
 */
export async function deleteLocalDatabase(options: LocalStoreOptions): Promise<void> {
  const db = createDexie(options);
  try {
    await db.delete();
  } catch (e) {
    throw toStorageError(`deleting the local database "${databaseName(options.userId)}"`, e);
  }
}
