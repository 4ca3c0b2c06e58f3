import { IDBDatabase, IDBObjectStore } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { localStore, rebuildView } from '../../src/api/internal.js';
import { type CompactDoc, canonicalCompact, rebase, toCompact, toKeyed } from '../../src/doc/index.js';
import { clearLocal, createUserDb, DatabaseClosedError, StorageError, type UserDb } from '../../src/index.js';
import { View } from '../../src/query/index.js';
import { entryBytes, type OutboxEntry } from '../../src/store/index.js';
import {
  type Env,
  freshEnv,
  openTyped,
  openUntyped,
  project,
  raw,
  rawAll,
  record,
  waitFor,
} from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((db) => db.close()));
});

async function untyped(env: Env): Promise<UserDb> {
  const db = await openUntyped(env);
  open.push(db);
  return db;
}

const NOTES = {
  fields: [
    { name: 'id', type: 'string' as const },
    { name: 'text', type: 'string' as const },
    { name: 'n', type: 'integer' as const },
  ],
  primaryKey: ['id'],
};

describe('durability', () => {
  it('reopening reconstructs exactly the state before close, including the pending outbox', async () => {
    const env = freshEnv();
    const db = await openTyped(env);
    await db.table('projects').insert(project('p1'));
    await db.transaction(async () => {
      await db.table('projects').insert(project('p2'));
      await db.table('members').insert({ team: 't', user: 1 });
    });
    await db.table('projects').update('p1', { title: 'renamed', note: 'n' });
    await db.table('projects').delete('p2');
    await db.createTable('notes', NOTES);
    await db.untypedTable('notes').insert({ id: 'a', text: 'x'.repeat(10), n: 1 });
    await db.addField('notes', { name: 'extra', type: 'any' });
    const before = await db.export();
    const pending = await localStore(db as unknown as UserDb).readOutbox();
    expect(pending.length).toBeGreaterThan(5);
    await db.close();

    const again = await openTyped(env);
    open.push(again);
    expect(await again.export()).toEqual(before);
    expect(await localStore(again as unknown as UserDb).readOutbox()).toEqual(pending);
    expect(again.startupErrors).toEqual([]);
    expect(await again.untypedTable('notes').get('a')).toEqual({
      id: 'a',
      text: 'xxxxxxxxxx',
      n: 1,
      extra: null,
    });
  });

  it('appends one outbox row per write and never rewrites the base on a write', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    const metaBefore = await rawAll(env, 'meta');
    for (let i = 0; i < 5; i++) await db.table('notes').insert({ id: `n${i}`, text: 't', n: i });
    await db.table('notes').update('n1', { n: 10 });
    const entries = await rawAll(env, 'outbox');
    expect(entries).toHaveLength(7);
    expect(entries.at(-1)).toMatchObject({
      seq: 7,
      ops: [
        { op: 'test', path: '/tables/notes/rows/n1/n', value: 1 },
        { op: 'replace', path: '/tables/notes/rows/n1/n', value: 10 },
      ],
    });
    expect(typeof (entries.at(-1) as { createdAt: unknown }).createdAt).toBe('string');
    expect(await rawAll(env, 'meta')).toEqual(metaBefore);
  });

  it('a write resolves only after its IndexedDB transaction committed', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    await db.table('notes').insert({ id: 'a', text: 't', n: 1 });
    // read through a separate connection right after the promise resolved
    const rows = await rawAll(env, 'outbox');
    expect(JSON.stringify(rows.at(-1))).toContain('/tables/notes/rows/a');
  });

  it('clearLocal deletes the local database', async () => {
    const env = freshEnv();
    const db = await openUntyped(env);
    await db.createTable('notes', NOTES);
    await db.close();
    await clearLocal(env.userId, { indexedDB: env.indexedDB, IDBKeyRange: env.IDBKeyRange });
    const names = (await env.indexedDB.databases()).map((d) => d.name);
    expect(names).not.toContain(`userdb:${env.userId}`);
    const fresh = await untyped(env);
    expect(await fresh.export()).toEqual({ version: 1, tables: {} });
  });

  it('close() waits for pending writes, completes live queries and rejects later use', async () => {
    const env = freshEnv();
    const db = await openUntyped(env);
    await db.createTable('notes', NOTES);
    const w = db.table('notes').insert({ id: 'a', text: 't', n: 1 });
    await db.close();
    await expect(w).resolves.toMatchObject({ id: 'a' });
    await expect(db.table('notes').get('a')).rejects.toBeInstanceOf(DatabaseClosedError);
    await expect(db.table('notes').insert({ id: 'b', text: 't', n: 1 })).rejects.toBeInstanceOf(
      DatabaseClosedError,
    );
    await expect(db.transaction(() => undefined)).rejects.toBeInstanceOf(DatabaseClosedError);
    await db.close(); // idempotent
    // the connection is really closed: deleting the database is not blocked
    await clearLocal(env.userId, { indexedDB: env.indexedDB, IDBKeyRange: env.IDBKeyRange });
  });
});

describe('close()', () => {
  it('leaves no timers, immediates or other handles behind', async () => {
    const before = process.getActiveResourcesInfo();
    const db = await openTyped(freshEnv());
    await db.table('projects').insert(project('p1'));
    const sub = db.table('projects').query().observe().subscribe();
    await db.close();
    await new Promise((resolve) => setImmediate(resolve));
    const added = process.getActiveResourcesInfo().filter((r) => !before.includes(r));
    expect(added).toEqual([]);
    expect(sub.closed).toBe(true);
  });
});

describe('QuotaExceededError', () => {
  const quota = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError');

  /** The browser may throw at once from `add`/`put`… */
  function throwOnWrite(env: Env): void {
    for (const method of ['add', 'put'] as const) {
      const original = IDBObjectStore.prototype[method];
      vi.spyOn(IDBObjectStore.prototype, method).mockImplementation(function (this: IDBObjectStore, ...args) {
        if (this.transaction.db.name === `userdb:${env.userId}`) throw quota();
        return original.apply(this, args);
      });
    }
  }

  /** …or fail the request later, aborting the transaction with a QuotaExceededError. */
  function abortOnWrite(env: Env): void {
    for (const method of ['add', 'put'] as const) {
      const original = IDBObjectStore.prototype[method];
      vi.spyOn(IDBObjectStore.prototype, method).mockImplementation(function (this: IDBObjectStore, ...args) {
        if (this.transaction.db.name === `userdb:${env.userId}`) {
          const rawStore = (this as unknown as { _rawObjectStore: { storeRecord: () => never } })
            ._rawObjectStore;
          const storeRecord = rawStore.storeRecord;
          rawStore.storeRecord = () => {
            rawStore.storeRecord = storeRecord;
            throw quota();
          };
        }
        return original.apply(this, args);
      });
    }
  }

  it.each([
    ['thrown by add/put', throwOnWrite],
    ['aborting the transaction', abortOnWrite],
  ])(
    '%s: surfaces as StorageError and changes nothing (view, outbox, subscribers)',
    async (_, failWrites) => {
      const env = freshEnv();
      const db = await untyped(env);
      await db.createTable('notes', NOTES);
      await db.table('notes').insert({ id: 'a', text: 't', n: 1 });
      const exported = await db.export();
      const outbox = await rawAll(env, 'outbox');
      const rec = record(db.table('notes').query().observe());
      failWrites(env);
      const err = await db
        .table('notes')
        .update('a', { n: 2 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as Error).message).toMatch(/quota/);
      const txErr = await db
        .transaction(async () => {
          await db.table('notes').insert({ id: 'b', text: 't', n: 1 });
        })
        .catch((e: unknown) => e);
      expect(txErr).toBeInstanceOf(StorageError);
      vi.restoreAllMocks();
      expect(await db.export()).toEqual(exported);
      expect(await rawAll(env, 'outbox')).toEqual(outbox);
      expect(rec.values).toHaveLength(1);
      // the database keeps working once space is available
      await db.table('notes').update('a', { n: 3 });
      expect((await db.table('notes').get('a'))?.n).toBe(3);
      rec.stop();
    },
  );
});

describe('corrupted or foreign records at open', () => {
  it('quarantines a foreign base record, reports it, and starts', async () => {
    const env = freshEnv();
    const db = await openUntyped(env);
    await db.createTable('notes', NOTES);
    await db.close();
    await raw(env, 'meta', 'readwrite', (s) => s.put({ something: 'else', version: 7 }, 'base'));

    const again = await untyped(env);
    expect(again.startupErrors).toHaveLength(1);
    expect(again.startupErrors[0]).toBeInstanceOf(StorageError);
    expect(again.startupErrors[0]?.message).toMatch(/base document is invalid/);
    // the pending outbox still replays on the (empty) base
    expect((await again.tableSchemas()).notes).toEqual(NOTES);
    const quarantined = await localStore(again).readQuarantine();
    expect(quarantined).toMatchObject([
      { source: 'meta', key: 'base', record: { something: 'else', version: 7 } },
    ]);
    expect(await rawAll(env, 'meta')).not.toContainEqual(expect.objectContaining({ something: 'else' }));
  });

  it('quarantines a base whose document is invalid (rows misaligned)', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    const bad = {
      doc: {
        version: 1,
        tables: {
          t: {
            schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] },
            rows: [['a', 'extra']],
          },
        },
      },
      updatedAt: null,
      generation: 1,
    };
    await db.close();
    open.length = 0;
    await raw(env, 'meta', 'readwrite', (s) => s.put(bad, 'base'));
    const again = await untyped(env);
    expect(again.startupErrors.map((e) => e.name)).toEqual(['StorageError']);
    expect(await again.export()).toEqual({ version: 1, tables: {} });
  });

  it('quarantines corrupted outbox rows and keeps the valid ones', async () => {
    const env = freshEnv();
    const db = await openUntyped(env);
    await db.createTable('notes', NOTES);
    await db.untypedTable('notes').insert({ id: 'a', text: 't', n: 1 });
    await db.close();
    await raw(env, 'outbox', 'readwrite', (s) => s.add({ ops: 'garbage', createdAt: 5 }));
    await raw(env, 'outbox', 'readwrite', (s) =>
      s.add({ ops: [{ op: 'move', from: '/a', path: '/b' }], createdAt: 'x' }),
    );
    // shape-valid but not a keyed userdb op: rejected when replayed
    await raw(env, 'outbox', 'readwrite', (s) =>
      s.add({ ops: [{ op: 'add', path: '/elsewhere', value: 1 }], createdAt: 'x' }),
    );
    await raw(env, 'outbox', 'readwrite', (s) =>
      s.add({
        ops: [{ op: 'add', path: '/tables/notes/rows/b', value: { id: 'b', text: 'u', n: 2 } }],
        createdAt: 'x',
      }),
    );
    const again = await untyped(env);
    expect(again.startupErrors).toHaveLength(3);
    expect(again.startupErrors.every((e) => e instanceof StorageError)).toBe(true);
    expect(again.startupErrors.map((e) => e.message).join('\n')).toMatch(/outbox entry 3/);
    expect((await again.table('notes').query().toArray()).map((r) => r.id)).toEqual(['a', 'b']);
    expect(await localStore(again).readQuarantine()).toHaveLength(3);
    expect((await localStore(again).readOutbox()).map((e) => e.seq)).toEqual([1, 2, 6]);
  });

  it('a clean start-up reads every record in one read-only transaction; a repair reads again in a read-write one', async () => {
    const env = freshEnv();
    const db = await openUntyped(env);
    await db.createTable('notes', NOTES);
    await db.untypedTable('notes').insert({ id: 'a', text: 't', n: 1 });
    await db.close();
    const seen: { stores: string[]; mode: string }[] = [];
    const original = IDBDatabase.prototype.transaction;
    vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (
      this: IDBDatabase,
      ...args: Parameters<IDBDatabase['transaction']>
    ) {
      const tx = original.apply(this, args);
      seen.push({ stores: [...tx.objectStoreNames], mode: tx.mode });
      return tx;
    });
    const clean = await untyped(env);
    expect(clean.startupErrors).toEqual([]);
    // (Dexie's own open reads every store, own included)
    const loads = () => seen.filter((t) => t.stores.includes('outbox') && !t.stores.includes('own'));
    expect(loads()).toEqual([{ stores: ['log', 'meta', 'outbox'], mode: 'readonly' }]);
    await clean.close();
    open.length = 0;
    seen.length = 0;
    await raw(env, 'outbox', 'readwrite', (s) => s.add({ ops: 'garbage', createdAt: 5 }));
    seen.length = 0;
    const repaired = await untyped(env);
    expect(loads().slice(0, 2)).toEqual([
      { stores: ['log', 'meta', 'outbox'], mode: 'readonly' },
      { stores: ['log', 'meta', 'outbox', 'quarantine'], mode: 'readwrite' },
    ]);
    expect(repaired.startupErrors).toHaveLength(1);
    expect((await repaired.table('notes').query().toArray()).map((r) => r.id)).toEqual(['a']);
  });

  it('reports a stored table that does not match its declaration, and still opens', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('projects', {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'title', type: 'integer' },
      ],
      primaryKey: ['id'],
    });
    await db.close();
    open.length = 0;
    const typed = await openTyped(env);
    open.push(typed);
    expect(typed.startupErrors).toHaveLength(1);
    expect(typed.startupErrors[0]).toMatchObject({ name: 'SchemaError', table: 'projects', field: 'title' });
  });
});

describe('internal hooks for the sync engine', () => {
  it('readOutbox honours afterSeq and a byte cap (always at least one entry)', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    for (let i = 0; i < 4; i++) await db.table('notes').insert({ id: `n${i}`, text: 'x'.repeat(100), n: i });
    const store = localStore(db);
    const all = await store.readOutbox();
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await store.readOutbox({ afterSeq: 3 })).map((e) => e.seq)).toEqual([4, 5]);
    const cap = entryBytes(all[1] as OutboxEntry) + entryBytes(all[2] as OutboxEntry);
    expect((await store.readOutbox({ afterSeq: 1, maxBytes: cap })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await store.readOutbox({ afterSeq: 1, maxBytes: cap - 1 })).map((e) => e.seq)).toEqual([2]);
    expect((await store.readOutbox({ afterSeq: 1, maxBytes: 1 })).map((e) => e.seq)).toEqual([2]);
    expect(store.clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await store.getNextBatchSeq()).toBe(1);
  });

  it('commitPush stores the base and drops pushed entries atomically; the view is unchanged', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    await db.table('notes').insert({ id: 'a', text: 't', n: 1 });
    await db.table('notes').insert({ id: 'b', text: 't', n: 2 });
    const rows = await db.table('notes').query().toArray();
    const store = localStore(db);
    const [first, second] = await store.readOutbox();
    const pushedDoc: CompactDoc = {
      version: 1,
      tables: { notes: { schema: NOTES, rows: [['a', 't', 1]] } },
    };
    expect(first && second).toBeTruthy();
    await store.commitPush({
      newBase: pushedDoc,
      updatedAt: '2026-01-02T03:04:05.123456+00:00',
      upToSeq: 2,
      nextBatchSeq: 8,
    });
    const result = await rebuildView(db);
    expect(result.changed.size).toBe(0);
    expect(await db.table('notes').query().toArray()).toEqual(rows);
    // identity kept for unchanged rows across the rebuild
    const after = await db.table('notes').query().toArray();
    expect(after[0]).toBe(rows[0]);
    expect((await store.readOutbox()).map((e) => e.seq)).toEqual([3]);
    expect(await store.getNextBatchSeq()).toBe(8);
    const base = await store.readBase();
    expect(base.updatedAt).toBe('2026-01-02T03:04:05.123456+00:00');
    expect(canonicalCompact(base.doc)).toEqual(canonicalCompact(pushedDoc));
  });

  it('countOutbox, outboxBounds, readOutboxUpTo', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    const store = localStore(db);
    expect(await store.countOutbox()).toBe(0);
    expect(await store.outboxBounds()).toEqual({ first: 0, last: 0 });
    await db.createTable('notes', NOTES);
    for (let i = 0; i < 3; i++) await db.table('notes').insert({ id: `n${i}`, text: 't', n: i });
    expect(await store.countOutbox()).toBe(4);
    expect(await store.outboxBounds()).toEqual({ first: 1, last: 4 });
    expect((await store.readOutboxUpTo(2)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('rebaseOutbox stores the pulled base and the rewritten outbox at once; views follow', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    await db.table('notes').insert({ id: 'a', text: 'local', n: 1 });
    await db.table('notes').insert({ id: 'b', text: 'local', n: 2 });
    const store = localStore(db);
    const pulled: CompactDoc = {
      version: 1,
      tables: { notes: { schema: NOTES, rows: [['z', 'remote', 9]] } },
    };
    // the first entry (create table) was already applied by the server; rebase the others on the pull
    await store.rebaseOutbox({ doc: pulled, updatedAt: 't9', dropUpToSeq: 1 }, (entries) => {
      const { patches } = rebase(
        toKeyed(pulled),
        entries.map((e) => e.ops),
      );
      return entries.map((e, i) => ({ seq: e.seq, ops: i === 0 ? [] : (patches[i] ?? []) }));
    });
    expect((await store.readOutbox()).map((e) => e.seq)).toEqual([3]);
    expect((await store.readBase()).updatedAt).toBe('t9');
    const ids = (await db.table('notes').query().orderBy('id').toArray()).map((r) => r.id);
    expect(ids).toEqual(['b', 'z']);
  });

  it('an exact push keeps every view that has the pushed entries as it is (no rebuild)', async () => {
    const env = freshEnv();
    const a = await untyped(env);
    await a.createTable('notes', NOTES);
    await a.table('notes').insert({ id: 'x', text: 't', n: 1 });
    const b = await untyped(env);
    const rowsA = await a.table('notes').query().toArray();
    const rowsB = await b.table('notes').query().toArray();
    const store = localStore(a);
    const base = await store.readBase();
    const entries = await store.readOutbox();
    const newBase = toCompact(
      rebase(
        toKeyed(base.doc),
        entries.map((e) => e.ops),
      ).doc,
    );
    const rebuilds = vi.spyOn(View.prototype, 'replaceAll');
    await store.commitPush({ newBase, updatedAt: 't1', upToSeq: entries.at(-1)?.seq ?? 0, exact: true });
    // reads wait for the databases to process the change notification
    expect(await a.table('notes').query().toArray()).toEqual(rowsA);
    expect(await b.table('notes').query().toArray()).toEqual(rowsB);
    expect(rebuilds).not.toHaveBeenCalled();
    expect((await a.table('notes').query().toArray())[0]).toBe(rowsA[0]);
    // the views stay in step with later writes
    await a.table('notes').update('x', { n: 2 });
    await waitFor(b.table('notes').observe('x'), (r) => r?.n === 2);
    expect(rebuilds).not.toHaveBeenCalled();
    // a push that is not exact makes them rebuild
    const next = await store.readOutbox();
    await store.commitPush({
      newBase: toCompact(
        rebase(
          toKeyed((await store.readBase()).doc),
          next.map((e) => e.ops),
        ).doc,
      ),
      updatedAt: 't2',
      upToSeq: next.at(-1)?.seq ?? 0,
    });
    expect((await a.table('notes').get('x'))?.n).toBe(2);
    expect((await b.table('notes').get('x'))?.n).toBe(2);
    expect(rebuilds).toHaveBeenCalledTimes(2);
    expect(await a.export()).toEqual(await b.export());
  });

  it('after replaceBase, the view becomes base + outbox and only changed tables notify', async () => {
    const env = freshEnv();
    const db = await untyped(env);
    await db.createTable('notes', NOTES);
    await db.createTable('other', NOTES);
    await db.table('notes').insert({ id: 'a', text: 'local', n: 1 });
    const store = localStore(db);
    const base = await store.readBase();
    // the server has another row and the tables, pushed earlier by this device
    const pulled: CompactDoc = {
      version: 1,
      tables: {
        notes: { schema: NOTES, rows: [['z', 'remote', 9]] },
        other: { schema: NOTES, rows: [] },
      },
    };
    expect(base.updatedAt).toBeNull();
    const notes = record(db.table('notes').query().observe());
    const other = record(db.table('other').query().observe());
    await store.replaceBase(pulled, '2026-01-01T00:00:00+00:00');
    // the database notices the new base by itself (change notification)
    await waitFor(db.table('notes').query().observe(), (r) => r.length === 2);
    expect(
      notes.values
        .at(-1)
        ?.map((r) => r.id)
        .sort(),
    ).toEqual(['a', 'z']);
    expect(other.values).toHaveLength(1);
    notes.stop();
    other.stop();
  });

  it('another instance sees a new base too', async () => {
    const env = freshEnv();
    const a = await untyped(env);
    await a.createTable('notes', NOTES);
    const b = await untyped(env);
    await localStore(a).replaceBase(
      { version: 1, tables: { notes: { schema: NOTES, rows: [['r', 'remote', 1]] } } },
      '2026-01-01T00:00:00+00:00',
    );
    const rows = await waitFor(b.table('notes').query().observe(), (r) => r.length === 1);
    expect(rows[0]).toEqual({ id: 'r', text: 'remote', n: 1 });
  });
});

describe('createUserDb', () => {
  it('rejects an empty user id', async () => {
    await expect(createUserDb({ userId: '', indexedDB: freshEnv().indexedDB })).rejects.toMatchObject({
      name: 'SchemaError',
    });
  });
});

describe('problems found after open', () => {
  it('a corrupted outbox row met while catching up is quarantined and reported on errors$', async () => {
    const env = freshEnv();
    const a = await untyped(env);
    await a.createTable('notes', NOTES);
    const b = await untyped(env);
    const reported: unknown[] = [];
    const sub = a.errors$.subscribe((e) => reported.push(e));
    // written behind userdb's back (no change notification)
    await raw(env, 'outbox', 'readwrite', (s) => s.add({ ops: 42, createdAt: 'x' }));
    await b.table('notes').insert({ id: 'n1', text: 't', n: 1 });
    await waitFor(a.table('notes').query().observe(), (rows) => rows.length === 1);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(StorageError);
    expect(await localStore(a).readQuarantine()).toHaveLength(1);
    sub.unsubscribe();
  });

  it('change notifications flag the appends of this instance', async () => {
    const env = freshEnv();
    const a = await untyped(env);
    const b = await untyped(env);
    const seen: { meta: boolean; outbox: boolean; ownAppendsOnly: boolean }[] = [];
    const off = localStore(a).onChange((c) => seen.push(c));
    await a.createTable('notes', NOTES);
    expect(seen).toEqual([{ meta: false, outbox: true, ownAppendsOnly: true }]);
    await b.table('notes').insert({ id: 'n1', text: 't', n: 1 });
    // another instance's append in this process comes with its ops
    expect(seen.at(-1)).toEqual({
      meta: false,
      outbox: true,
      ownAppendsOnly: false,
      commits: {
        generation: 0,
        entries: [
          {
            seq: 2,
            ops: [{ op: 'add', path: '/tables/notes/rows/n1', value: { id: 'n1', text: 't', n: 1 } }],
          },
        ],
      },
    });
    await localStore(a).setNextBatchSeq(5);
    expect(seen.at(-1)).toEqual({ meta: true, outbox: false, ownAppendsOnly: false });
    off();
  });
});
