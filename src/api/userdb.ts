/**
 * The database: `createUserDb` opens a user's local document (IndexedDB base + outbox replayed into
 * an in-memory keyed view), and `UserDb` runs reads, writes, transactions and live queries on it.
 *
 * ## Write path
 * A write is validated against the current state and turned into keyed ops, which are applied to a
 * pending layer (never to the committed view), appended as ONE outbox row in one IndexedDB
 * transaction, and only after that commit applied to the view; then the live queries of the tables
 * it changed re-evaluate, once. If the append fails (e.g. quota exceeded) nothing changes and the
 * write rejects with a `StorageError`.
 *
 * ## Transactions (no AsyncLocalStorage: the browser has none)
 * Writes and transactions are serialized per database in call order. While a transaction's callback
 * runs, it is the database's *open transaction*: every read and write on this database, from
 * anywhere, belongs to it (reads see its pending writes; a write's promise resolves once it is
 * buffered). A `db.transaction()` called while one is open runs inside it as a nested transaction
 * (a savepoint: its writes are undone if its callback throws). The transaction commits as one
 * outbox row when its callback resolves, and is discarded entirely if it throws.
 *
 * ## Other instances (tabs)
 * The store notifies every instance on the same IndexedDB of each commit; an instance then reads the
 * new outbox rows and applies them (or, when the base changed or a row does not apply strictly,
 * rebuilds the view from base + outbox with the document module's tolerant `rebase`).
 */
import { BehaviorSubject, EMPTY, filter, Observable, of, Subject } from 'rxjs';
import {
  type CompactDoc,
  checkTableName,
  type FieldDef,
  isFieldType,
  type Json,
  jsonEqual,
  type KeyedTable,
  keyedPath,
  type PatchOp,
  parseCompactDoc,
  parseTableSchema,
  type RebaseConflict,
  type Row,
  sameSchema,
  type TableSchema,
  textIssue,
  toCompact,
  toKeyed,
} from '../doc/index.js';
import {
  DatabaseClosedError,
  NotFoundError,
  SchemaError,
  StorageError,
  type UserDbError,
  ValidationError,
} from '../errors.js';
import {
  ChangeSet,
  INDEXABLE_TYPES,
  LiveQueries,
  layerToKeyed,
  type Maintained,
  Overlay,
  type ReadLayer,
  View,
} from '../query/index.js';
import {
  type AppendedCommits,
  deleteLocalDatabase,
  LocalStore,
  type LogRecord,
  type OutboxEntry,
  type PickEntries,
  type StoreChange,
} from '../store/index.js';
import {
  type SyncClient,
  type SyncConflict,
  type SyncEngine,
  type SyncOptions,
  type SyncStatus,
  sessionUserId,
  startSync,
} from '../sync/index.js';
import { checkDeclaredRow } from './codec.js';
import { checkRepairOps, checkStorable, type HeldEntry, heldEntriesOf } from './held.js';
import {
  applyToPre,
  type OpTarget,
  outside,
  PendingRows,
  replayRows,
  restrict,
  rowId,
  sameOps,
  type TrackedRow,
  targetOf,
} from './pending-rows.js';

/** The status of a database without sync. */
const LOCAL_ONLY_STATUS: SyncStatus = Object.freeze({
  state: 'idle',
  online: false,
  leader: false,
  pendingCount: 0,
  lastSyncedAt: null,
  lastError: null,
  retryAt: null,
});

import {
  type DeclaredTable,
  declaredTables,
  type SchemaDefinition,
  type TableTypesOf,
  type UntypedTableTypes,
  type UserDbSchema,
} from './schema.js';
import { type DbCore, Table, type WriteScope } from './table.js';

/**
 * Options of {@link createUserDb}.
 *
 * @example
 * ```ts
 * const options: CreateUserDbOptions = { userId: 'u1', indexedDB: new IDBFactory() };
 * ```
 */
export interface CreateUserDbOptions<S extends SchemaDefinition = SchemaDefinition> {
  /**
   * The user whose document this is; one local IndexedDB database (`userdb:<userId>`) per user.
   * Optional with `supabase`: then it is read from the client's session, which is awaited (and may
   * need the network to refresh an expired token). Pass it with `supabase` to start offline: the
   * database opens from IndexedDB at once and sync waits for a session of this user (see
   * {@link createUserDb}).
   */
  userId?: string | undefined;
  /**
   * The user's authenticated supabase-js client: the database then syncs with the user's row in
   * `public.user_databases` (see docs/sync.md). Without it the database is local only.
   */
  supabase?: SyncClient | undefined;
  /** Sync tuning: debounce, batch size, safety poll, backoff, per-table `onConflict` hooks. */
  sync?: SyncOptions | undefined;
  /** Declared tables (from {@link defineSchema}); created in the document if missing. */
  schema?: UserDbSchema<S> | undefined;
  /** The IndexedDB factory (default: the global `indexedDB`; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory | undefined;
  /** The matching `IDBKeyRange` (default: the global one). */
  IDBKeyRange?: typeof IDBKeyRange | undefined;
}

/**
 * Options of {@link clearLocal}.
 *
 * @example
 * ```ts
 * await clearLocal('u1', { indexedDB: new IDBFactory() } satisfies ClearLocalOptions);
 * ```
 */
export interface ClearLocalOptions {
  indexedDB?: IDBFactory | undefined;
  IDBKeyRange?: typeof IDBKeyRange | undefined;
}

/**
 * The table names `db.table()` accepts: the declared ones, or any name for an untyped database.
 *
 * @example
 * ```ts
 * type Names = TableName<typeof schema.definition>; // 'projects' | 'members'
 * ```
 */
export type TableName<S extends SchemaDefinition> = string extends keyof S ? string : keyof S & string;

/**
 * The API types of table `T`: inferred from the schema, or untyped.
 *
 * @example
 * ```ts
 * type ProjectRow = TypesOf<typeof schema.definition, 'projects'>['row'];
 * ```
 */
export type TypesOf<S extends SchemaDefinition, T extends string> = string extends keyof S
  ? UntypedTableTypes
  : T extends keyof S
    ? TableTypesOf<S, T>
    : UntypedTableTypes;

/**
 * What a rebuild of the view found (returned by the internal `rebuild` hook).
 *
 * @example
 * ```ts
 * const { changed, conflicts } = await rebuildView(db);
 * ```
 */
export interface RebuildResult {
  /** Tables whose content changed. */
  changed: ReadonlySet<string>;
  /** Local edits the tolerant replay dropped or rewrote. */
  conflicts: RebaseConflict[];
}

/**
 * @internal How the view changed in one step: `incremental` (applied from the log and the outbox
 * without reading the base) or `rebuild` (base + outbox replayed), with the row changes it emitted
 * to the live queries and the conflicts of the tolerant replay it ran (rows it replayed only).
 */
export interface ViewUpdate {
  path: 'incremental' | 'rebuild';
  rows: ChangeSet;
  conflicts: RebaseConflict[];
}

interface TxState {
  readonly overlay: Overlay;
  readonly ops: PatchOp[];
}

/**
 * A user's local database. Create it with {@link createUserDb}; close it with {@link UserDb.close}.
 *
 * @example
 * ```ts
 * const db = await createUserDb({ userId, schema });
 * await db.table('projects').insert({ id: 'p_1', title: 'First', status: 'open', created_at: new Date().toISOString() });
 * db.table('projects').query().where('status', '==', 'open').observe().subscribe(render);
 * ```
 */
export class UserDb<S extends SchemaDefinition = SchemaDefinition> {
  /** The user this database belongs to. */
  readonly userId: string;
  /**
   * Problems found in the local data at open (a corrupted or foreign record moved to the quarantine,
   * a declared table whose stored schema differs from the declaration). The database works anyway.
   */
  readonly startupErrors: readonly UserDbError[];
  /**
   * Problems found later, in the background (a record quarantined while reloading after another
   * tab's commit, a failed reload). Reads and writes keep working.
   */
  readonly errors$: Observable<UserDbError>;

  private readonly store: LocalStore;
  private readonly declared: ReadonlyMap<string, DeclaredTable>;
  private readonly live = new LiveQueries();
  private readonly errorSubject = new Subject<UserDbError>();
  private readonly heldSubject = new BehaviorSubject<readonly HeldEntry[] | null>(null);
  private heldRefresh: 'idle' | 'running' | 'again' = 'idle';
  private readonly problems: UserDbError[] = [];
  private readonly core: DbCore;
  private readonly view = new View();
  private generation = -1;
  private appliedSeq = 0;
  /** The rows the view's pending entries touch, with their confirmed values (see PendingRows). */
  private readonly pending = new PendingRows();
  private readonly schemaOf = (table: string): TableSchema | undefined => this.view.schemaOf(table);
  /** `rebuild`: every new base rebuilds the view (a reference for tests). */
  private viewMode: 'incremental' | 'rebuild' = 'incremental';
  private readonly viewListeners = new Set<(update: ViewUpdate) => void>();
  /**
   * Set while the view holds outbox rows whose base generation was assumed, not read with them (see
   * `AppendResult.generationChecked`): the store's count of foreign `meta` changes just before the
   * first of them was appended. If that count moved and the stored generation differs from the
   * view's, another tab may have changed the base just before they were appended: the view is
   * rebuilt rather than patched.
   */
  private unverifiedSince: number | undefined;
  private current: TxState | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private catchUpQueued = false;
  private closing = false;
  private syncEngine: SyncEngine | undefined;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private unsubscribeStore: () => void = () => {};
  private readonly tables = new Map<string, Table<UntypedTableTypes>>();

  private constructor(userId: string, store: LocalStore, declared: ReadonlyMap<string, DeclaredTable>) {
    this.userId = userId;
    this.store = store;
    this.declared = declared;
    for (const [name, table] of declared)
      if (table.indexes.length > 0) this.view.setIndexes(name, table.indexes);
    this.startupErrors = this.problems;
    this.errors$ = this.errorSubject.asObservable();
    this.core = {
      read: (fn) => this.read(fn),
      write: (fn) => this.write(fn),
      watch: (tables, evaluate, same) => this.watch(tables, evaluate, same),
      maintain: (tables, open, same) => this.maintain(tables, open, same),
      view: () => this.view,
      declared: (table) => this.declared.get(table),
    };
  }

  /** @internal Use {@link createUserDb}. */
  static async open<S extends SchemaDefinition>(options: CreateUserDbOptions<S>): Promise<UserDb<S>> {
    if (typeof options.userId !== 'string' || options.userId === '') {
      throw new SchemaError('createUserDb needs a non-empty userId (or a signed-in supabase client)');
    }
    const store = await LocalStore.open({
      userId: options.userId,
      indexedDB: options.indexedDB,
      IDBKeyRange: options.IDBKeyRange,
    });
    const db = new UserDb<S>(
      options.userId,
      store,
      declaredTables(options.schema as UserDbSchema | undefined),
    );
    try {
      db.unsubscribeStore = store.onChange((change) => db.onStoreChange(change));
      await db.exclusive(async () => {
        const { problems } = await db.reloadLocked();
        for (const p of problems) db.problems.push(p);
      });
      await db.ensureDeclared();
    } catch (e) {
      db.shutdown();
      throw e;
    }
    return db;
  }

  /**
   * A declared table, typed from the schema (an undeclared name is a type error). Without a schema,
   * any table (rows typed as JSON records).
   *
   * @example
   * ```ts
   * const projects = db.table('projects');
   * ```
   */
  table<T extends TableName<S>>(name: T): Table<TypesOf<S, T>> {
    return this.untypedTable(name) as unknown as Table<TypesOf<S, T>>;
  }

  /**
   * Any table by name, untyped (rows are JSON records): for tables created at run time with
   * {@link UserDb.createTable} in a database that also has declared ones.
   *
   * @example
   * ```ts
   * const notes = db.untypedTable('notes');
   * await notes.insert({ id: 'n1', text: 'hello' });
   * ```
   */
  untypedTable(name: string): Table<UntypedTableTypes> {
    let t = this.tables.get(name);
    if (t === undefined) {
      t = new Table<UntypedTableTypes>(this.core, name);
      this.tables.set(name, t);
    }
    return t;
  }

  /**
   * Creates a table at run time (untyped use). Throws {@link SchemaError} when the schema is invalid
   * or the table exists.
   *
   * @example
   * ```ts
   * await db.createTable('notes', { fields: [{ name: 'id', type: 'string' }, { name: 'text', type: 'string' }], primaryKey: ['id'] });
   * ```
   */
  createTable(name: string, schema: TableSchema): Promise<void> {
    return this.write((scope) => {
      checkTableName(name);
      const parsed = parseTableSchema(schema, name);
      if (scope.layer.schemaOf(name) !== undefined)
        throw new SchemaError('table already exists', { table: name });
      scope.apply([
        { op: 'add', path: keyedPath.table(name), value: { schema: parsed, rows: {} } as unknown as Json },
      ]);
      return () => undefined;
    });
  }

  /**
   * Adds an in-memory index on `fields` of a table (meant for tables created at run time; declared
   * tables take `indexes` in {@link defineSchema}). Indexes are not stored: declare it again after
   * each open. Throws {@link NotFoundError} for an unknown table, {@link SchemaError} for an unknown
   * field or one of type object, array or any.
   *
   * @example
   * ```ts
   * await db.createIndex('notes', ['pinned', 'updated_at']);
   * ```
   */
  createIndex(table: string, fields: string | readonly string[]): Promise<void> {
    return this.read((layer) => {
      const schema = layer.schemaOf(table);
      if (schema === undefined) throw new NotFoundError('unknown table', { table });
      const names: unknown[] = Array.isArray(fields) ? [...fields] : [fields];
      if (names.length === 0) throw new SchemaError('an index needs at least one field', { table });
      for (const field of names) {
        const def = schema.fields.find((f) => f.name === field);
        if (def === undefined)
          throw new SchemaError('index on an unknown field', { table, field: String(field) });
        if (!INDEXABLE_TYPES.has(def.type)) {
          throw new SchemaError(`a field of type ${def.type} cannot be indexed`, { table, field: def.name });
        }
      }
      if (new Set(names).size !== names.length)
        throw new SchemaError('an index names a field twice', { table });
      const defs = this.view.indexDefsOf(table);
      if (defs.some((d) => d.length === names.length && d.every((n, i) => n === names[i]))) return;
      this.view.setIndexes(table, [...defs, names as string[]]);
    });
  }

  /**
   * Drops a table and all its rows. Throws {@link NotFoundError} when it does not exist.
   * (A declared table is created again, empty, the next time the database opens.)
   *
   * @example
   * ```ts
   * await db.dropTable('notes');
   * ```
   */
  dropTable(name: string): Promise<void> {
    return this.write((scope) => {
      if (scope.layer.schemaOf(name) === undefined) throw new NotFoundError('unknown table', { table: name });
      scope.apply([{ op: 'remove', path: keyedPath.table(name) }]);
      return () => undefined;
    });
  }

  /**
   * Adds a field to an existing table; existing rows get `null`. Throws {@link NotFoundError} for an
   * unknown table, {@link SchemaError} for a bad or existing field.
   *
   * @example
   * ```ts
   * await db.addField('notes', { name: 'pinned', type: 'boolean' });
   * ```
   */
  addField(table: string, field: FieldDef): Promise<void> {
    return this.write((scope) => {
      const schema = scope.layer.schemaOf(table);
      if (schema === undefined) throw new NotFoundError('unknown table', { table });
      const name: unknown = field?.name;
      if (typeof name !== 'string' || name === '')
        throw new SchemaError('a field needs a non-empty name', { table });
      const nameIssue = textIssue(name);
      if (nameIssue !== undefined)
        throw new SchemaError(`invalid field name: PostgreSQL cannot store ${nameIssue}`, {
          table,
          field: name,
        });
      if (!isFieldType(field.type)) {
        throw new SchemaError(`unknown field type ${JSON.stringify(field.type)}`, { table, field: name });
      }
      if (schema.fields.some((f) => f.name === name)) {
        throw new SchemaError('field already exists', { table, field: name });
      }
      scope.apply([{ op: 'add', path: keyedPath.fields(table), value: { name, type: field.type } }]);
      return () => undefined;
    });
  }

  /**
   * The names and schemas of the tables in the document.
   *
   * @example
   * ```ts
   * const schemas = await db.tableSchemas(); // { projects: { fields: [...], primaryKey: ['id'] } }
   * ```
   */
  tableSchemas(): Promise<Record<string, TableSchema>> {
    return this.read((layer) => {
      const out: Record<string, TableSchema> = {};
      for (const name of layer.tableNames()) {
        Object.defineProperty(out, name, {
          value: structuredClone(layer.schemaOf(name)),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    });
  }

  /**
   * Runs `fn` as one transaction: its writes apply (and later sync) all together or not at all, are
   * stored as one outbox row, and cause at most one emission per live query. If `fn` throws, nothing
   * is applied and the promise rejects with that error; subscribers never see its writes.
   *
   * There is no async context in browsers, so the rule is per database: while `fn` runs, every read
   * and write on this database, from anywhere, belongs to the transaction (reads see its pending
   * writes; a write's promise resolves as soon as it is buffered, and a failed write changes nothing
   * and rejects, aborting the transaction only if `fn` lets the error through). A `db.transaction()`
   * called while `fn` runs is nested: a savepoint undone if its callback throws. Otherwise
   * transactions and writes run one after the other, in call order.
   *
   * @example
   * ```ts
   * await db.transaction(async () => {
   *   const p = await db.table('projects').get('p_1');
   *   await db.table('projects').update('p_1', { title: `${p?.title} (copy)` });
   *   await db.table('tasks').insert({ id: 't_1', project_id: 'p_1', title: 'Start' });
   * });
   * ```
   */
  transaction<R>(fn: () => R | Promise<R>): Promise<R> {
    try {
      this.assertOpen();
      if (typeof fn !== 'function') {
        throw new ValidationError(
          `db.transaction(fn) needs a function, got ${fn === null ? 'null' : typeof fn}`,
        );
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const open = this.current;
    if (open !== null) return this.nested(open, fn);
    return this.exclusive(async () => {
      const tx: TxState = { overlay: new Overlay(this.view), ops: [] };
      this.current = tx;
      let result: R;
      try {
        result = await fn();
      } finally {
        this.current = null;
      }
      await this.commitLocked(tx);
      return result;
    });
  }

  /**
   * The whole document in compact form (the seed format), including pending local edits.
   *
   * @example
   * ```ts
   * const json = JSON.stringify(await db.export());
   * ```
   */
  export(): Promise<CompactDoc> {
    return this.read((layer) => structuredClone(toCompact(layerToKeyed(layer))));
  }

  /**
   * Replaces the whole document by `doc` (validated first: {@link SchemaError} or
   * {@link ValidationError}, then nothing changes), as one transaction. Declared tables missing from
   * `doc` are recreated empty; declared tables in `doc` must match their declaration.
   *
   * @example
   * ```ts
   * await db.import(JSON.parse(backupText));
   * ```
   */
  async import(doc: unknown): Promise<void> {
    const parsed = parseCompactDoc(doc);
    const keyed = toKeyed(parsed);
    checkStorable(keyed);
    for (const [name, declared] of this.declared) {
      const table = Object.hasOwn(keyed.tables, name) ? keyed.tables[name] : undefined;
      if (table === undefined) continue;
      const problem = schemaMismatch(declared, table.schema);
      if (problem !== undefined) throw problem;
      for (const key of Object.keys(table.rows))
        checkDeclaredRow(declared, key, table.rows[key] as KeyedTable['rows'][string]);
    }
    await this.write((scope) => {
      const ops: PatchOp[] = [];
      for (const name of scope.layer.tableNames()) {
        if (!Object.hasOwn(keyed.tables, name)) ops.push({ op: 'remove', path: keyedPath.table(name) });
      }
      for (const name of Object.keys(keyed.tables)) {
        const incoming = keyed.tables[name] as KeyedTable;
        const schema = scope.layer.schemaOf(name);
        if (schema !== undefined && sameSchema(schema, incoming.schema)) {
          // same schema: row-level changes only, so that a later sync merges them with remote edits
          ops.push(...rowDiff(scope.layer, name, incoming));
          continue;
        }
        if (schema !== undefined) ops.push({ op: 'remove', path: keyedPath.table(name) });
        ops.push({ op: 'add', path: keyedPath.table(name), value: incoming as unknown as Json });
      }
      if (ops.length > 0) scope.apply(ops);
      const ensure = this.declaredOps(scope.layer).ops;
      if (ensure.length > 0) scope.apply(ensure);
      return () => undefined;
    });
  }

  /**
   * Waits for pending writes, then closes the database: live queries complete, IndexedDB is closed,
   * no timers or listeners remain. Later calls reject with {@link DatabaseClosedError}. Idempotent.
   *
   * @example
   * ```ts
   * await db.close();
   * ```
   */
  close(): Promise<void> {
    if (this.closePromise === undefined) {
      this.closing = true;
      // sync stops first (timers, socket, leader lock) and stores what a request in flight returns
      const stopSync = this.syncEngine?.close() ?? Promise.resolve();
      this.closePromise = stopSync
        .then(() => this.tail)
        .then(
          () => this.shutdown(),
          () => this.shutdown(),
        );
    }
    return this.closePromise;
  }

  // ---- sync (src/sync) ---------------------------------------------------------------------------

  /**
   * The sync status: `state` (`idle`, `pushing`, `pulling`, `backoff`, `offline`, `error`), `online`,
   * `leader`, `pendingCount`, `lastSyncedAt`, `lastError`. A local-only database (no `supabase`)
   * emits one constant status.
   *
   * @example
   * ```ts
   * db.status$.subscribe((s) => (badge.textContent = s.pendingCount > 0 ? `${s.pendingCount} unsynced` : s.state));
   * ```
   */
  get status$(): Observable<SyncStatus> {
    return this.syncEngine?.status$ ?? of(LOCAL_ONLY_STATUS);
  }

  /**
   * Local edits dropped or overridden when a newer server document arrived (an update of a row
   * deleted remotely, the same field edited on two devices…), each with table, key, field and both
   * values. Never emits for a local-only database.
   *
   * @example
   * ```ts
   * db.conflicts$.subscribe((c) => console.warn(`${c.table}/${c.key}.${c.field}: kept ${JSON.stringify(c.remote)}`));
   * ```
   */
  get conflicts$(): Observable<SyncConflict> {
    return this.syncEngine?.conflicts$ ?? EMPTY;
  }

  /**
   * Resolves once every write made before the call is on the server (waits through network
   * trouble; rejects when sync stops on a permanent error, which calling it again retries).
   * Resolves at once for a local-only database.
   *
   * @example
   * ```ts
   * await db.table('projects').insert(row);
   * await db.flush();
   * ```
   */
  flush(): Promise<void> {
    if (this.closing)
      return Promise.reject(new DatabaseClosedError(`the database of user "${this.userId}" is closed`));
    return this.syncEngine?.flush() ?? Promise.resolve();
  }

  /**
   * Fetches the server document now and resolves once it is applied (rejects with the pull's
   * error). Resolves at once for a local-only database, and in a tab that is not the sync leader.
   *
   * @example
   * ```ts
   * await db.pull();
   * ```
   */
  pull(): Promise<void> {
    if (this.closing)
      return Promise.reject(new DatabaseClosedError(`the database of user "${this.userId}" is closed`));
    return this.syncEngine?.pull() ?? Promise.resolve();
  }

  /**
   * The local writes held back from sync, oldest first (see {@link HeldEntry}): the server refused
   * them for good, or they touch the rows of one that was. Later writes keep syncing.
   *
   * @example
   * ```ts
   * const held = await db.heldEntries();
   * if (held.length > 0) showRepairDialog(held);
   * ```
   */
  async heldEntries(): Promise<HeldEntry[]> {
    this.assertOpen();
    return heldEntriesOf(await this.store.readQuarantine());
  }

  /**
   * The held entries ({@link heldEntries}), replayed on subscribe and emitted whenever they change
   * (in any tab).
   *
   * @example
   * ```ts
   * db.held$.subscribe((held) => (banner.hidden = held.length === 0));
   * ```
   */
  get held$(): Observable<readonly HeldEntry[]> {
    if (this.heldSubject.value === null) this.refreshHeld();
    return this.heldSubject.pipe(filter((h): h is readonly HeldEntry[] => h !== null));
  }

  /**
   * Writes a held entry again, as a new write at the end of the outbox, with `ops` instead of its
   * own when given (a repaired version: keyed JSON Patch ops as in {@link HeldEntry.ops}), and
   * removes it from the held list. The ops are checked like any write (rejects with
   * `ValidationError`, `NotFoundError`… and the entry stays held). Retry an entry's dependents
   * (`waitsFor`) after it, in order.
   *
   * @example
   * ```ts
   * const [h] = await db.heldEntries();
   * await db.retryHeld(h.id, h.ops?.filter((op) => !op.path.endsWith('/attachment')));
   * ```
   */
  async retryHeld(id: number, ops?: readonly PatchOp[]): Promise<void> {
    const entry = (await this.heldEntries()).find((h) => h.id === id);
    if (entry === undefined) throw new NotFoundError(`no held entry with id ${id}`);
    const replay = ops ?? entry.ops;
    if (replay === undefined || !Array.isArray(replay)) {
      throw new ValidationError(`held entry ${id} cannot be read back: pass the ops to write instead`);
    }
    if (replay.length > 0) {
      await this.write((scope) => {
        checkRepairOps(scope.layer, replay);
        scope.apply(replay.map((op) => ({ ...op })));
        return () => undefined;
      });
    }
    await this.store.deleteQuarantined(id);
    this.refreshHeld();
  }

  /**
   * Deletes a held entry for good (its write is lost; the app decided so).
   *
   * @example
   * ```ts
   * for (const h of await db.heldEntries()) await db.discardHeld(h.id);
   * ```
   */
  async discardHeld(id: number): Promise<void> {
    this.assertOpen();
    await this.store.deleteQuarantined(id);
    this.refreshHeld();
  }

  /** Re-reads the held list; when entries were newly held, rebuilds the view without them. */
  private refreshHeld(): void {
    if (this.heldRefresh !== 'idle') {
      this.heldRefresh = 'again';
      return;
    }
    this.heldRefresh = 'running';
    void (async () => {
      for (;;) {
        try {
          if (this.closed) return;
          const next = heldEntriesOf(await this.store.readQuarantine());
          const prev = this.heldSubject.value;
          const known = new Set((prev ?? []).map((h) => h.id));
          const added = next.some((h) => !known.has(h.id));
          const same = prev !== null && !added && prev.length === next.length;
          if (added) {
            // the view still shows the held writes: rebuild it from base + outbox
            await this.exclusive(() => this.reloadAndReport());
          }
          if (!same && !this.closed) this.heldSubject.next(next);
        } catch (e) {
          this.report(e);
        }
        if (this.heldRefresh === 'again') {
          this.heldRefresh = 'running';
          continue;
        }
        this.heldRefresh = 'idle';
        return;
      }
    })();
  }

  /** @internal Attaches the sync engine (done by {@link createUserDb} with `supabase`). */
  attachSync(engine: SyncEngine): void {
    this.syncEngine = engine;
  }

  // ---- internals -------------------------------------------------------------------------------

  /** @internal The store (for the sync engine). */
  get localStore(): LocalStore {
    return this.store;
  }

  /** @internal Calls `listener` with every change of the view (see {@link ViewUpdate}). */
  onViewUpdate(listener: (update: ViewUpdate) => void): () => void {
    this.viewListeners.add(listener);
    return () => {
      this.viewListeners.delete(listener);
    };
  }

  /** @internal `rebuild`: every new base rebuilds the view from base + outbox (a reference for tests). */
  setViewMode(mode: 'incremental' | 'rebuild'): void {
    this.viewMode = mode;
  }

  /** @internal The number of rows pending entries touch, as the view tracks them. */
  get trackedRows(): number {
    return this.pending.size;
  }

  private emitViewUpdate(path: ViewUpdate['path'], rows: ChangeSet, conflicts: RebaseConflict[]): void {
    for (const listener of [...this.viewListeners]) listener({ path, rows, conflicts });
  }

  /**
   * @internal view := base + replayed outbox, read from the store; notifies the live queries of the
   * tables that changed. Serialized with writes.
   */
  rebuild(): Promise<RebuildResult> {
    return this.exclusive(async () => {
      const { changed, conflicts } = await this.reloadLocked();
      return { changed, conflicts };
    });
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    this.unsubscribeStore();
    this.live.completeAll();
    this.errorSubject.complete();
    this.heldSubject.complete();
    this.store.close();
  }

  private assertOpen(): void {
    if (this.closing || this.closed) {
      throw new DatabaseClosedError(`the database of user "${this.userId}" is closed`);
    }
  }

  /** Runs `fn` after everything queued before it (FIFO), holding the database's write lock. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => {
        this.queued--;
      },
      () => {
        this.queued--;
      },
    );
    return run;
  }

  private async read<T>(fn: (layer: ReadLayer) => T): Promise<T> {
    this.assertOpen();
    if (this.current === null && this.queued > 0) {
      // Read-your-writes: a read issued after a write sees it.
      await this.tail.catch(() => undefined);
      this.assertOpen();
    }
    return fn(this.current?.overlay ?? this.view);
  }

  private write<T>(fn: (scope: WriteScope) => (layer: ReadLayer) => T): Promise<T> {
    try {
      this.assertOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const open = this.current;
    if (open !== null) {
      try {
        const reader = this.applyIn(open, fn);
        return Promise.resolve(reader(open.overlay));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.exclusive(async () => {
      this.assertNotClosed();
      const tx: TxState = { overlay: new Overlay(this.view), ops: [] };
      const reader = this.applyIn(tx, fn);
      await this.commitLocked(tx);
      return reader(this.view);
    });
  }

  private assertNotClosed(): void {
    if (this.closed) throw new DatabaseClosedError(`the database of user "${this.userId}" is closed`);
  }

  /** Runs one write in `tx`; on a throw, `tx` is left exactly as before. */
  private applyIn<T>(tx: TxState, fn: (scope: WriteScope) => T): T {
    const mark = tx.overlay.mark();
    const opCount = tx.ops.length;
    const scope: WriteScope = {
      layer: tx.overlay,
      apply: (ops) => {
        for (const op of ops) tx.overlay.apply(op);
        tx.ops.push(...ops);
      },
    };
    try {
      return fn(scope);
    } catch (e) {
      tx.overlay.rollback(mark);
      tx.ops.length = opCount;
      throw e;
    }
  }

  private async nested<R>(tx: TxState, fn: () => R | Promise<R>): Promise<R> {
    const mark = tx.overlay.mark();
    const opCount = tx.ops.length;
    try {
      return await fn();
    } catch (e) {
      if (this.current === tx) {
        tx.overlay.rollback(mark);
        tx.ops.length = opCount;
      }
      throw e;
    }
  }

  /** Appends `tx` to the outbox, then applies it to the view and notifies. Holds the lock. */
  private async commitLocked(tx: TxState): Promise<void> {
    if (tx.ops.length === 0) return;
    const foreignBefore = this.store.foreignMetaChanges;
    const result = await this.store.append(tx.ops);
    if (!result.generationChecked) this.unverifiedSince ??= foreignBefore;
    if (result.generation !== this.generation || result.previousSeq > this.appliedSeq) {
      // Another instance committed in between: replay everything after what the view has.
      await this.catchUpLocked();
      return;
    }
    const changed = new Set<string>();
    const rows = new ChangeSet();
    try {
      this.trackEntry(result.seq, tx.ops);
      this.view.apply(tx.ops, changed, rows);
    } catch {
      await this.reloadAndReport(changed);
      return;
    }
    this.appliedSeq = result.seq;
    // a generation read with this row proves the earlier rows were appended on it too (it only grows)
    if (result.generationChecked) this.unverifiedSince = undefined;
    this.live.notify(rows);
    this.emitViewUpdate('incremental', rows, []);
  }

  private onStoreChange(change: StoreChange): void {
    if (this.closing || change.ownAppendsOnly) return;
    // entries deleted or moved aside (a push, a pull, an entry held by sync): re-read the held list
    if (change.outbox && change.commits === undefined) this.refreshHeld();
    if (change.commits !== undefined && this.applyCommitsNow(change.commits)) return;
    if (this.catchUpQueued) return;
    this.catchUpQueued = true;
    this.exclusive(async () => {
      this.catchUpQueued = false;
      if (this.closed) return;
      await this.catchUpLocked();
    }).catch((e: unknown) => this.report(e));
  }

  /**
   * Applies another instance's just-committed outbox rows at once, in this event-loop turn, when the
   * database is idle and they directly follow what the view has. Returns false when they do not
   * (then the store is read instead).
   */
  private applyCommitsNow(commits: AppendedCommits): boolean {
    if (this.queued > 0 || this.current !== null || this.catchUpQueued) return false;
    if (commits.generation !== this.generation) return false;
    const first = commits.entries[0];
    if (first === undefined || first.seq !== this.appliedSeq + 1) return false;
    if (commits.entries.some((e, i) => e.seq !== first.seq + i)) return false;
    const changed = new Set<string>();
    const rows = new ChangeSet();
    for (const entry of commits.entries) {
      try {
        this.trackEntry(entry.seq, entry.ops);
        this.view.apply(entry.ops, changed, rows);
      } catch {
        // does not apply strictly: rebuild from the store (tolerant replay)
        this.exclusive(() => this.reloadAndReport(changed)).catch((e: unknown) => this.report(e));
        return true;
      }
      this.appliedSeq = entry.seq;
    }
    // appended on an assumed generation through another connection, whose changes are not ordered
    // with this one's: any later change of the generation rebuilds the view (-1 matches no count)
    if (commits.generationAssumed === true) this.unverifiedSince = -1;
    this.live.notify(rows);
    this.emitViewUpdate('incremental', rows, []);
    return true;
  }

  private report(e: unknown): void {
    if (this.closed) return;
    const err = e instanceof Error && 'code' in e ? (e as UserDbError) : undefined;
    if (err !== undefined) this.errorSubject.next(err);
  }

  /**
   * Brings the view up to date with the store (after a commit of this or another instance): the
   * base's logged changes since the view's generation are applied to the view (a push the view
   * already shows changes nothing; a pulled change is applied as keyed ops), then the outbox rows
   * the view lacks. Anything else (a whole new base, a rebased outbox) rebuilds. Holds the lock.
   */
  private async catchUpLocked(): Promise<void> {
    const tail = await this.store.readSince(this.appliedSeq, this.generation, this.pickEntries);
    if (tail === undefined) {
      await this.reloadAndReport();
      return;
    }
    const changed = new Set<string>();
    const rows = new ChangeSet();
    if (
      tail.generation !== this.generation &&
      this.unverifiedSince !== undefined &&
      this.unverifiedSince !== this.store.foreignMetaChanges
    ) {
      // rows were applied on a generation not read with them, and another tab changed the store
      // since: it may have changed the base just before they were appended, so the logged changes
      // cannot be laid under them
      await this.reloadAndReport();
      return;
    }
    // Read with the outbox in one transaction. Either the generation did not change (the view's rows
    // were appended on it: it only grows), or every change since came from this process, which the
    // store saw at once: rows appended after such a change had their generation read.
    this.unverifiedSince = undefined;
    const conflicts: RebaseConflict[] = [];
    if (tail.generation !== this.generation) {
      const from = tail.pushedFrom;
      const viaLog =
        tail.log !== undefined ? this.applyLog(tail.log, changed, rows, tail.picked, conflicts) : 'no';
      if (viaLog === 'failed') {
        await this.reloadAndReport(changed);
        return;
      }
      if (
        viaLog === 'no' &&
        (from === undefined || from.generation !== this.generation || this.appliedSeq < from.upToSeq)
      ) {
        await this.reloadAndReport(changed);
        return;
      }
      // an exact push the view had applied: its entries are now part of the base
      if (viaLog === 'no' && from !== undefined) this.pending.ack(from.upToSeq, this.schemaOf);
      // The view is the new base + the outbox entries it has.
      this.generation = tail.generation;
    }
    for (const entry of tail.entries) {
      try {
        this.trackEntry(entry.seq, entry.ops);
        this.view.apply(entry.ops, changed, rows);
      } catch {
        await this.reloadAndReport(changed);
        return;
      }
      this.appliedSeq = entry.seq;
    }
    if (changed.size > 0) this.live.notify(rows);
    if (changed.size > 0 || conflicts.length > 0) this.emitViewUpdate('incremental', rows, conflicts);
  }

  /** Records an outbox entry the view is about to apply (its rows' confirmed values are the view's). */
  private trackEntry(seq: number, ops: PatchOp[]): void {
    this.pending.add(seq, ops, (table, key) => this.view.getRow(table, key), this.schemaOf);
  }

  /**
   * The outbox entries a catch-up needs besides the new ones (read with the log, in its
   * transaction): those touching the rows with pending entries that the log's changes touch, and
   * the rows of those of them the store no longer has (rewritten away, or held), transitively.
   */
  private readonly pickEntries: PickEntries = (log, picked) => {
    if (this.viewMode !== 'incremental') return [];
    let acked = 0;
    const rows = new Set<string>();
    for (const record of log) {
      if (record.exact && record.acked !== null) {
        acked = Math.max(acked, record.acked);
        continue;
      }
      for (const op of record.keyed ?? []) {
        const t = targetOf(op);
        const r = t?.key === undefined ? undefined : this.pending.row(t.table, t.key);
        if (r !== undefined) rows.add(r.id);
      }
    }
    return this.closure(rows, picked, acked).want;
  };

  /**
   * `rows` and, transitively, the tracked rows of pending entries the store no longer has (`null`
   * in `picked`); `want`: the entries of those rows not read yet (seqs up to `skipUpTo` left out).
   */
  private closure(
    rows: Set<string>,
    picked: ReadonlyMap<number, PatchOp[] | null>,
    skipUpTo: number,
  ): { rows: Set<string>; want: number[] } {
    const want = new Set<number>();
    const queue = [...rows];
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
      for (const seq of this.pending.rowById(id)?.seqs ?? []) {
        if (seq <= skipUpTo) continue;
        const stored = picked.get(seq);
        if (stored === undefined) want.add(seq);
        else if (stored === null) {
          for (const other of this.pending.entry(seq)?.rows ?? []) {
            if (rows.has(other) || this.pending.rowById(other) === undefined) continue;
            rows.add(other);
            queue.push(other);
          }
        }
      }
    }
    return { rows, want: [...want] };
  }

  /**
   * Applies the base's logged changes to the view, which shows the base of its generation plus
   * the pending outbox entries it applied (tracked by `pending`). An own exact push the view had
   * applied changes nothing but the confirmed values of its rows. A change's op on a row no pending
   * entry touches is applied to the view as it is; on a row pending entries touch, it is applied to
   * the row's confirmed value, and at the end those rows' entries, as the store holds them now
   * (rebased on these changes; read in `picked`), are replayed on them. O(changes + entries of the
   * rows they touch). `'no'` when the log cannot be applied that way (a whole document, an own
   * change after foreign ones, a table-level op on a table with pending entries, a row op on a
   * table they change as a whole) and the view was not changed; `'failed'` when it was (rebuild).
   */
  private applyLog(
    log: readonly LogRecord[],
    changed: Set<string>,
    rows: ChangeSet,
    picked: ReadonlyMap<number, PatchOp[] | null> | undefined,
    conflicts: RebaseConflict[],
  ): 'ok' | 'no' | 'failed' {
    if (this.viewMode !== 'incremental') return 'no';
    const p = this.pending;
    let touched = false;
    const dirty = new Set<string>();
    // rows no pending entry touches, changed off the view and written once at the end (so a row
    // changed back to what it was keeps its identity, and each row is one change for live queries)
    const direct = new Map<string, TrackedRow>();
    const flush = (table?: string): boolean => {
      for (const [id, r] of direct) {
        if (table !== undefined && r.table !== table) continue;
        direct.delete(id);
        if (!this.writeRow(r.table, r.key, r.pre, changed, rows)) return false;
      }
      return true;
    };
    for (const record of log) {
      if (record.exact && record.acked !== null && this.appliedSeq >= record.acked) {
        // entries rebased since they were read: their acknowledged form is unknown here
        if (p.acksTouch(record.acked, dirty)) return 'failed';
        p.ack(record.acked, this.schemaOf);
        continue;
      }
      if (record.keyed === null) return touched || dirty.size > 0 ? 'failed' : 'no';
      for (const op of record.keyed) {
        const t = targetOf(op);
        if (t === null || (t.key === undefined ? p.touchesTable(t.table) : p.blocked(t.table))) {
          return touched || dirty.size > 0 ? 'failed' : 'no';
        }
      }
      for (const op of record.keyed) {
        const t = targetOf(op) as OpTarget;
        touched = true;
        try {
          if (t.key === undefined) {
            // a table as a whole (no pending entry touches it): after the rows changed before
            if (!flush(t.table)) return 'failed';
            this.view.apply([op], changed, rows);
            continue;
          }
          const schema = this.view.schemaOf(t.table);
          if (schema === undefined) return 'failed';
          const id = rowId(t.table, t.key);
          const r = p.rowById(id);
          if (r !== undefined) {
            applyToPre(r, op, schema);
            dirty.add(id);
            continue;
          }
          let w = direct.get(id);
          if (w === undefined) {
            w = { id, table: t.table, key: t.key, pre: this.view.getRow(t.table, t.key), seqs: [] };
            direct.set(id, w);
          }
          applyToPre(w, op, schema);
        } catch {
          return 'failed';
        }
      }
    }
    if (!flush()) return 'failed';
    if (dirty.size === 0) return 'ok';
    return this.replayDirty(dirty, picked, changed, rows, conflicts) ? 'ok' : 'failed';
  }

  /** Sets a row of the view to `next` (`undefined`: absent) unless it already holds that value. */
  private writeRow(
    table: string,
    key: string,
    next: Row | undefined,
    changed: Set<string>,
    rows: ChangeSet,
  ): boolean {
    const current = this.view.getRow(table, key);
    const path = keyedPath.row(table, key);
    let op: PatchOp;
    if (next === undefined) {
      if (current === undefined) return true;
      op = { op: 'remove', path };
    } else if (current === undefined) op = { op: 'add', path, value: next };
    else if (current === next || jsonEqual(current, next)) return true;
    else op = { op: 'replace', path, value: next };
    try {
      this.view.apply([op], changed, rows);
    } catch {
      return false;
    }
    return true;
  }

  /**
   * Replays, on the confirmed values of `dirty` rows (and of rows that entries the store no longer
   * has touched), their pending entries as the store holds them, and writes the results to the view.
   * False when the store's entries do not match what the view knows of them (then rebuild).
   */
  private replayDirty(
    dirty: Set<string>,
    picked: ReadonlyMap<number, PatchOp[] | null> | undefined,
    changed: Set<string>,
    rows: ChangeSet,
    conflicts: RebaseConflict[],
  ): boolean {
    if (picked === undefined) return false;
    const p = this.pending;
    const { rows: ids, want } = this.closure(new Set(dirty), picked, 0);
    if (want.length > 0) return false;
    const tracked = [...ids].map((id) => p.rowById(id));
    const seqSet = new Set<number>();
    for (const r of tracked) {
      if (r === undefined || p.blocked(r.table)) return false;
      for (const seq of r.seqs) seqSet.add(seq);
    }
    const seqs = [...seqSet].sort((a, b) => a - b);
    for (const seq of seqs) {
      // a rebase rewrites an entry only where the changes touched it
      const stored = picked.get(seq);
      const known = p.entry(seq);
      if (stored === undefined || known === undefined) return false;
      if (stored !== null && !sameOps(outside(stored, ids), outside(known.ops, ids))) return false;
    }
    const list = tracked as NonNullable<(typeof tracked)[number]>[];
    let result: ReturnType<typeof replayRows>;
    try {
      result = replayRows(
        list,
        seqs.map((seq) => restrict(picked.get(seq) ?? [], ids)),
        this.schemaOf,
      );
    } catch {
      return false;
    }
    for (const seq of seqs) if (!p.refresh(seq, picked.get(seq) ?? null, this.schemaOf)) return false;
    for (const r of list) {
      if (!this.writeRow(r.table, r.key, result.rows.get(r.id), changed, rows)) return false;
    }
    conflicts.push(...result.conflicts);
    return true;
  }

  private async reloadAndReport(alsoChanged?: ReadonlySet<string>): Promise<void> {
    const { problems } = await this.reloadLocked(alsoChanged);
    for (const p of problems) this.errorSubject.next(p);
  }

  /**
   * view := base + outbox, replayed tolerantly; unchanged rows keep their identity. Entries whose ops
   * are malformed are quarantined. Holds the lock.
   */
  private async reloadLocked(
    alsoChanged?: ReadonlySet<string>,
  ): Promise<{ changed: Set<string>; conflicts: RebaseConflict[]; problems: UserDbError[] }> {
    const snapshot = await this.store.load();
    const problems: UserDbError[] = [...snapshot.problems];
    const { view, conflicts, bad } = replay(snapshot.base.doc, snapshot.entries);
    if (bad.length > 0) {
      await this.store.quarantineEntries(bad);
      for (const b of bad) {
        problems.push(
          new StorageError(
            `outbox entry ${b.seq} cannot be replayed (${b.reason}); it was moved to the quarantine`,
          ),
        );
      }
    }
    const rows = new ChangeSet();
    const changed = this.view.replaceWith(view, rows);
    // rows of these tables changed without being collected: their queries re-evaluate in full
    for (const t of alsoChanged ?? []) {
      changed.add(t);
      rows.table(t);
    }
    this.generation = snapshot.base.generation;
    this.unverifiedSince = undefined;
    const badSeqs = new Set(bad.map((b) => b.seq));
    const entries = snapshot.entries.filter((e) => !badSeqs.has(e.seq));
    // the confirmed values of the rows pending entries touch (keyed lazily: rows are made on read)
    const base = entries.length > 0 ? View.fromCompact(snapshot.base.doc) : undefined;
    this.pending.reset((t, k) => base?.getRow(t, k), entries, this.schemaOf);
    const last = snapshot.entries.at(-1);
    if (last !== undefined) this.appliedSeq = Math.max(this.appliedSeq, last.seq);
    this.live.notify(rows);
    this.emitViewUpdate('rebuild', rows, conflicts);
    return { changed, conflicts, problems };
  }

  /** Creates declared tables and fields missing from the document, as one write. */
  private async ensureDeclared(): Promise<void> {
    if (this.declared.size === 0) return;
    try {
      await this.write((scope) => {
        const { ops, problems } = this.declaredOps(scope.layer);
        for (const p of problems) this.problems.push(p);
        if (ops.length > 0) scope.apply(ops);
        return () => undefined;
      });
    } catch (e) {
      // e.g. quota exceeded: open anyway (reads work); writes to a missing table report NotFoundError
      if (!(e instanceof StorageError)) throw e;
      this.problems.push(e);
    }
  }

  /** The ops that create missing declared tables and fields, and declarations that do not match. */
  private declaredOps(layer: ReadLayer): { ops: PatchOp[]; problems: SchemaError[] } {
    const ops: PatchOp[] = [];
    const problems: SchemaError[] = [];
    for (const [name, declared] of this.declared) {
      const schema = layer.schemaOf(name);
      if (schema === undefined) {
        ops.push({
          op: 'add',
          path: keyedPath.table(name),
          value: { schema: declared.schema, rows: {} } as unknown as Json,
        });
        continue;
      }
      const mismatch = schemaMismatch(declared, schema);
      if (mismatch !== undefined) {
        problems.push(mismatch);
        continue;
      }
      for (const f of declared.schema.fields) {
        if (!schema.fields.some((g) => g.name === f.name)) {
          ops.push({ op: 'add', path: keyedPath.fields(name), value: { name: f.name, type: f.type } });
        }
      }
    }
    return { ops, problems };
  }

  private watch<T>(
    tables: readonly string[],
    evaluate: (layer: ReadLayer) => T,
    same: (a: T, b: T) => boolean,
  ): Observable<T> {
    return this.guard(this.live.watch(tables, () => evaluate(this.view), same));
  }

  private maintain<T>(
    tables: readonly string[],
    open: () => Maintained<T>,
    same: (a: T, b: T) => boolean,
  ): Observable<T> {
    return this.guard(this.live.maintain(tables, open, same));
  }

  private guard<T>(source: Observable<T>): Observable<T> {
    return new Observable<T>((subscriber) => {
      if (this.closed) {
        subscriber.error(new DatabaseClosedError(`the database of user "${this.userId}" is closed`));
        return undefined;
      }
      return source.subscribe(subscriber);
    });
  }
}

/** Why a stored table does not match its declaration (same field types, same primary key), if it does not. */
function schemaMismatch(declared: DeclaredTable, schema: TableSchema): SchemaError | undefined {
  const table = declared.name;
  const pk = declared.schema.primaryKey;
  if (pk.length !== schema.primaryKey.length || pk.some((n, i) => n !== schema.primaryKey[i])) {
    return new SchemaError(
      `the stored primary key (${schema.primaryKey.join(', ')}) differs from the declared one (${pk.join(', ')})`,
      { table },
    );
  }
  for (const f of declared.schema.fields) {
    const stored = schema.fields.find((g) => g.name === f.name);
    if (stored !== undefined && stored.type !== f.type) {
      return new SchemaError(
        `the stored field type ${stored.type} differs from the declared type ${f.type}`,
        {
          table,
          field: f.name,
        },
      );
    }
  }
  return undefined;
}

/** The row ops that turn table `name` of `layer` into `incoming` (same schema). */
function rowDiff(layer: ReadLayer, name: string, incoming: KeyedTable): PatchOp[] {
  const ops: PatchOp[] = [];
  for (const [key] of layer.entries(name)) {
    if (!Object.hasOwn(incoming.rows, key)) ops.push({ op: 'remove', path: keyedPath.row(name, key) });
  }
  for (const key of Object.keys(incoming.rows)) {
    const row = incoming.rows[key] as KeyedTable['rows'][string];
    const current = layer.getRow(name, key);
    if (current === undefined) ops.push({ op: 'add', path: keyedPath.row(name, key), value: row });
    else if (!jsonEqual(current, row))
      ops.push({ op: 'replace', path: keyedPath.row(name, key), value: row });
  }
  return ops;
}

/**
 * Replays outbox entries on `base` with the tolerant rebase, entry by entry (each costs the size of
 * its patch, not of the document), setting aside entries whose ops are malformed.
 */
function replay(
  base: CompactDoc,
  entries: readonly OutboxEntry[],
): { view: View; conflicts: RebaseConflict[]; bad: { seq: number; reason: string }[] } {
  const view = View.fromCompact(base);
  const conflicts: RebaseConflict[] = [];
  const bad: { seq: number; reason: string }[] = [];
  for (const entry of entries) {
    try {
      conflicts.push(...view.replay(entry.ops));
    } catch (e) {
      bad.push({ seq: entry.seq, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  return { view, conflicts, bad };
}

/**
 * Opens a user's local database: loads the base and the pending outbox from IndexedDB, creates the
 * declared tables and fields that are missing, and returns the database. Corrupted or foreign records
 * are quarantined and listed in `db.startupErrors` (the database opens anyway). Rejects with
 * {@link StorageError} when IndexedDB cannot be opened.
 *
 * With `supabase`, the database also syncs (see docs/sync.md):
 * - with `userId` as well, it opens at once without any session or network call (offline start).
 *   Every request of sync first checks the client's session: while there is none, or it cannot be
 *   refreshed, sync retries (`status$`: `backoff`/`offline`, `lastError` an `AuthError` or
 *   `NetworkError`) and resumes when supabase-js signs in or refreshes the token; a session of
 *   another user stops sync with a `ForbiddenError` on `status$` (nothing is sent; local data and
 *   the outbox are kept).
 * - without `userId`, the user is read from the session first: rejects with `AuthError` when there
 *   is none.
 *
 * @example
 * ```ts
 * const schema = defineSchema({ projects: { fields: { id: z.string(), title: z.string() }, primaryKey: ['id'] } });
 * // offline-first: the user id the app remembered from its last sign-in
 * const db = await createUserDb({ supabase, userId: lastUserId, schema });
 * ```
 */
export async function createUserDb<S extends SchemaDefinition = SchemaDefinition>(
  options: CreateUserDbOptions<S>,
): Promise<UserDb<S>> {
  const client = options.supabase;
  if (client === undefined) return UserDb.open(options);
  // With `userId` the database opens from IndexedDB at once: no session or network call is awaited
  // here. Every remote call of sync checks the session first (see `SupabaseRemote`), so a missing
  // or expired session is retried, and a session of another user stops sync with ForbiddenError.
  const userId = options.userId ?? (await sessionUserId(client));
  const db = await UserDb.open({ ...options, userId });
  db.attachSync(
    startSync({
      client,
      userId,
      store: db.localStore,
      indexedDB: options.indexedDB,
      options: options.sync,
    }),
  );
  return db;
}

/**
 * Deletes a user's local data (base, pending outbox, quarantine). Close that user's open databases
 * first (an open one would block the deletion until it closes); edits not yet synced are lost.
 *
 * @example
 * ```ts
 * await db.close();
 * await clearLocal(userId);
 * ```
 */
export function clearLocal(userId: string, options: ClearLocalOptions = {}): Promise<void> {
  return deleteLocalDatabase({ userId, indexedDB: options.indexedDB, IDBKeyRange: options.IDBKeyRange });
}
