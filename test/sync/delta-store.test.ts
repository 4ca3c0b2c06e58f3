/**
 * The delta path end to end on the real local store (Dexie on fake-indexeddb) and a real database
 * view, against the in-memory server with the change log: what IndexedDB writes per push and per
 * pull, views following the log without rebuilding, start-up replaying base + log + outbox,
 * compaction, and a store written by the previous version.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CompactDoc, Json, PatchOp } from '../../src/doc/index.js';
import { ForbiddenError } from '../../src/errors.js';
import { createUserDb, type UserDb } from '../../src/index.js';
import { LocalStore } from '../../src/store/index.js';
import { SyncEngine, type SyncOptions } from '../../src/sync/engine.js';
import { syncStoreOf } from '../../src/sync/store-adapter.js';
import { eventually } from './helpers/devices.js';
import { FakeRemote, FakeServer } from './helpers/fake-remote.js';
import { projectsSchema, quietEngineOptions } from './helpers/fixtures.js';

let users = 0;
const opened: UserDb[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const db of opened.splice(0)) await db.close();
});

function bigDoc(n: number): CompactDoc {
  const rows: Json[][] = [];
  for (let i = 0; i < n; i++) rows.push([`p_${i}`, `Project number ${i} with a longer title`, 'open']);
  return { version: 1, tables: { projects: { schema: projectsSchema, rows } } };
}

async function device(
  server: FakeServer,
  env?: { indexedDB: IDBFactory; userId: string },
  options: SyncOptions = {},
) {
  users += 1;
  const indexedDB = env?.indexedDB ?? new IDBFactory();
  const userId = env?.userId ?? `delta_${process.pid}_${users}`;
  const db = await createUserDb({ userId, indexedDB, IDBKeyRange });
  opened.push(db);
  const remote = new FakeRemote(server);
  const engine = new SyncEngine({
    store: syncStoreOf(db.localStore),
    remote,
    userId,
    options: {
      ...quietEngineOptions(),
      ...options,
    },
  });
  db.attachSync(engine);
  await eventually(
    async () => engine.status.state === 'idle' && (await db.localStore.readBase()).updatedAt !== null,
  );
  return { db, engine, remote, store: db.localStore, indexedDB, userId };
}

const sorted = (doc: CompactDoc) => ({
  ...doc,
  tables: Object.fromEntries(
    Object.entries(doc.tables).map(([k, t]) => [
      k,
      { ...t, rows: [...t.rows].sort((a, b) => String(a[0]).localeCompare(String(b[0]))) },
    ]),
  ),
});

function written(store: LocalStore) {
  const s = store.writeStats;
  return { meta: s.meta, log: s.log, outbox: s.outbox, own: s.own, baseWrites: s.baseWrites };
}

describe('delta sync on the local store', () => {
  it('a one-field push and a one-field pull each write a few hundred bytes to IndexedDB, and the view follows without a rebuild', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(bigDoc(10_000), false);
    const d = await device(server);
    const load = vi.spyOn(d.store, 'load');
    const t = d.db.untypedTable('projects');

    const beforePush = written(d.store);
    await t.update('p_5', { title: 'Mine' });
    await d.db.flush();
    const push = written(d.store);
    // the push's log record and token, and the cell it remembers for overridden reports
    const pushBytes = push.meta + push.log + push.own - beforePush.meta - beforePush.log - beforePush.own;
    expect(push.own).toBeGreaterThan(beforePush.own);
    expect(push.baseWrites).toBe(beforePush.baseWrites);
    expect(pushBytes).toBeGreaterThan(0);
    expect(pushBytes).toBeLessThan(4096);

    const ops: PatchOp[] = [{ op: 'replace', path: '/tables/projects/rows/7/1', value: 'Theirs' }];
    server.writeOps(ops);
    await eventually(async () => (await t.get('p_7'))?.title === 'Theirs');
    const pull = written(d.store);
    const pullBytes = pull.meta + pull.log + pull.own - push.meta - push.log - push.own;
    expect(pull.baseWrites).toBe(push.baseWrites);
    expect(pullBytes).toBeGreaterThan(0);
    expect(pullBytes).toBeLessThan(4096);
    expect(load).not.toHaveBeenCalled(); // the view applied both without reading the base back
    expect(sorted(await d.db.export())).toEqual(sorted(server.doc));
  });

  it('with edits pending, a remote change of other rows is applied to the view as it is; one of the same row is applied to that row without a rebuild', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(bigDoc(1000), false);
    const d = await device(server);
    // the edit stays pending: pushes are forbidden (sync stops pushing; pulls go on)
    d.remote.beforePatch = () => {
      throw new ForbiddenError('userdb_patch: forbidden by the test');
    };
    const t = d.db.untypedTable('projects');
    await t.update('p_1', { title: 'Pending here' });
    await eventually(() => d.engine.status.state === 'error');
    const load = vi.spyOn(d.store, 'load');
    server.writeOps([{ op: 'replace', path: '/tables/projects/rows/7/1', value: 'Elsewhere' }]);
    await eventually(async () => (await t.get('p_7'))?.title === 'Elsewhere');
    expect(load).not.toHaveBeenCalled();
    expect((await t.get('p_1'))?.title).toBe('Pending here');
    server.writeOps([{ op: 'replace', path: '/tables/projects/rows/1/2', value: 'closed' }]);
    await eventually(async () => (await t.get('p_1'))?.status === 'closed');
    // the same row: rebased in the store, and only that row replayed in the view (no base read)
    expect(load).not.toHaveBeenCalled();
    expect((await t.get('p_1'))?.title).toBe('Pending here');
    expect(await d.store.countOutbox()).toBe(1);
    d.remote.beforePatch = undefined;
    await d.db.flush();
    expect(sorted(await d.db.export())).toEqual(sorted(server.doc));
  });

  it('a same-field conflict and a remote delete of rows with pending edits reach the view without reading the base', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(bigDoc(1000), false);
    const d = await device(server);
    d.remote.beforePatch = () => {
      throw new ForbiddenError('userdb_patch: forbidden by the test');
    };
    const conflicts: unknown[] = [];
    d.engine.conflicts$.subscribe((c) => conflicts.push(c));
    const t = d.db.untypedTable('projects');
    const before = await t.get('p_9');
    await t.update('p_1', { title: 'Mine' });
    await t.update('p_2', { status: 'closed' });
    await t.insert({ id: 'p_new', title: 'Both', status: 'mine' });
    await eventually(() => d.engine.status.state === 'error');
    const load = vi.spyOn(d.store, 'load');
    const readBase = vi.spyOn(d.store, 'readBase');
    server.writeOps([
      { op: 'replace', path: '/tables/projects/rows/1/1', value: 'Theirs' },
      { op: 'remove', path: '/tables/projects/rows/2' },
      { op: 'add', path: '/tables/projects/rows/-', value: ['p_new', 'Theirs too', 'theirs'] },
    ]);
    await eventually(async () => (await t.get('p_2')) === undefined);
    // the local value wins the same field and the remote delete wins the update; the local insert of
    // the same key replaces the remote row
    expect((await t.get('p_1'))?.title).toBe('Mine');
    expect(await t.get('p_new')).toEqual({ id: 'p_new', title: 'Both', status: 'mine' });
    expect(conflicts).toContainEqual(
      expect.objectContaining({ kind: 'field_changed', key: 'p_1', local: 'Mine', remote: 'Theirs' }),
    );
    expect(conflicts).toContainEqual(expect.objectContaining({ kind: 'row_deleted', key: 'p_2' }));
    expect(load).not.toHaveBeenCalled(); // no rebuild of the view
    expect(readBase).not.toHaveBeenCalled(); // nor any read of the whole base
    expect(await t.get('p_9')).toBe(before); // other rows keep their identity
    d.remote.beforePatch = undefined;
    await d.db.flush();
    expect(sorted(await d.db.export())).toEqual(sorted(server.doc));
    expect(server.doc.tables.projects?.rows.find((r) => r[0] === 'p_1')?.[1]).toBe('Mine');
  });

  it('start-up replays base + log + outbox; compaction folds the log; both give the same document', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(bigDoc(50), false);
    const d = await device(server);
    const t = d.db.untypedTable('projects');
    await t.update('p_1', { title: 'Pushed' });
    await d.db.flush();
    server.writeOps([{ op: 'replace', path: '/tables/projects/rows/2/2', value: 'closed' }]);
    await eventually(async () => (await t.get('p_2'))?.status === 'closed');
    expect((await d.store.logSize()).records).toBe(2);
    await d.engine.close();
    await t.update('p_3', { title: 'Pending' }); // stays in the outbox
    const expected = sorted(await d.db.export());
    await d.db.close();

    const reopened = await createUserDb({ userId: d.userId, indexedDB: d.indexedDB, IDBKeyRange });
    opened.push(reopened);
    expect(sorted(await reopened.export())).toEqual(expected);
    const base = await reopened.localStore.readBase();
    expect(base.updatedAt).toBe(server.updatedAt);

    const adapter = syncStoreOf(reopened.localStore);
    await adapter.compact?.({ force: true });
    expect(await reopened.localStore.logSize()).toEqual({ records: 0, bytes: 0 });
    expect(await reopened.localStore.readBase()).toEqual(base);
    await reopened.close();
    const again = await createUserDb({ userId: d.userId, indexedDB: d.indexedDB, IDBKeyRange });
    opened.push(again);
    expect(sorted(await again.export())).toEqual(expected);
  });

  it('a store written by the previous version (no log table) opens, upgrades and syncs by delta', async () => {
    const indexedDB = new IDBFactory();
    const userId = `legacy_${process.pid}`;
    const server = new FakeServer();
    server.broadcast = true;
    server.write(bigDoc(50), false);
    // the previous version's schema and records: meta (base, baseVersion, client), outbox
    const old = new Dexie(`userdb:${userId}`, { indexedDB, IDBKeyRange });
    old.version(1).stores({ meta: '', outbox: '++seq', quarantine: '++id' });
    await old.open();
    await old.table('meta').put({ doc: server.doc, updatedAt: server.updatedAt, generation: 3 }, 'base');
    await old.table('meta').put({ generation: 3, updatedAt: server.updatedAt }, 'baseVersion');
    await old.table('meta').put({ clientId: 'legacy-client', nextBatchSeq: 1 }, 'client');
    await old.table('outbox').add({
      ops: [{ op: 'replace', path: '/tables/projects/rows/p_4/title', value: 'Offline' }],
      createdAt: '2026-01-01T00:00:00Z',
    });
    old.close();

    const d = await device(server, { indexedDB, userId });
    expect(d.db.startupErrors).toEqual([]);
    await d.db.flush();
    expect((await d.db.untypedTable('projects').get('p_4'))?.title).toBe('Offline');
    expect(sorted(server.doc)).toEqual(sorted(await d.db.export()));
    expect((await d.store.logSize()).records).toBe(1); // the push was logged, not the base rewritten
  });

  it('a base validated when stored is not validated again; one whose mark does not match is', async () => {
    const indexedDB = new IDBFactory();
    const userId = `mark_${process.pid}`;
    const store = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    const doc = bigDoc(3);
    await store.replaceBase(doc, '2026-01-01T00:00:00.000000Z');
    store.close();
    // tamper with the stored document behind userdb's back: a value of the wrong type
    const raw = new Dexie(`userdb:${userId}`, { indexedDB, IDBKeyRange });
    raw.version(2).stores({ meta: '', outbox: '++seq', quarantine: '++id', log: 'generation' });
    await raw.open();
    const record = (await raw.table('meta').get('base')) as { doc: CompactDoc; generation: number };
    (record.doc.tables.projects?.rows[0] as Json[])[1] = 42;
    await raw.table('meta').put(record, 'base');

    const marked = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    const first = await marked.load();
    marked.close();
    // the mark says it was validated at this generation: no validation, the document as stored
    expect(first.problems).toEqual([]);
    expect(first.base.doc.tables.projects?.rows[0]).toEqual(['p_0', 42, 'open']);

    await raw
      .table('meta')
      .put({ generation: record.generation - 1, validation: 'compact-doc/1' }, 'baseMark');
    raw.close();
    const unmarked = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    const second = await unmarked.load();
    unmarked.close();
    // a mark of another generation: validated, and the invalid base is quarantined
    expect(second.problems).toHaveLength(1);
    expect(second.base.updatedAt).toBeNull();
  });

  it('a valid base found without its mark is validated once and marked by that start-up', async () => {
    const indexedDB = new IDBFactory();
    const userId = `remark_${process.pid}`;
    const store = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    await store.replaceBase(bigDoc(3), '2026-01-01T00:00:00.000000Z');
    await store.load(); // the client record exists: start-ups take the read-only path
    store.close();
    const raw = new Dexie(`userdb:${userId}`, { indexedDB, IDBKeyRange });
    raw.version(2).stores({ meta: '', outbox: '++seq', quarantine: '++id', log: 'generation' });
    await raw.open();
    await raw.table('meta').delete('baseMark');
    const again = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    expect((await again.load()).problems).toEqual([]);
    again.close();
    // marked now: a later tampering goes unseen (the document is not validated again)
    const record = (await raw.table('meta').get('base')) as { doc: CompactDoc };
    (record.doc.tables.projects?.rows[0] as Json[])[1] = 42;
    await raw.table('meta').put(record, 'base');
    raw.close();
    const third = await LocalStore.open({ userId, indexedDB, IDBKeyRange });
    const loaded = await third.load();
    third.close();
    expect(loaded.problems).toEqual([]);
    expect(loaded.base.doc.tables.projects?.rows[0]).toEqual(['p_0', 42, 'open']);
  });
});
