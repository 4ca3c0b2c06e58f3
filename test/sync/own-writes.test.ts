/**
 * `overridden` survives a reload: the cells a device wrote and the server acknowledged are kept in
 * the local store (the `own` table, written in the push's transaction, bounded, pruned oldest
 * first), so the device learns that a later device's rebase overrode its value even after it was
 * closed and reopened, once (not once per tab). Real local store (Dexie on fake-indexeddb), the
 * sync engine against the in-memory server with the change log.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompactDoc, Json } from '../../src/doc/index.js';
import { ForbiddenError } from '../../src/errors.js';
import { createUserDb, type UserDb } from '../../src/index.js';
import { LocalStore } from '../../src/store/index.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { InProcessLocks } from '../../src/sync/leader.js';
import type { SyncConflict } from '../../src/sync/rebase.js';
import { syncStoreOf } from '../../src/sync/store-adapter.js';
import { eventually } from './helpers/devices.js';
import { FakeRemote, FakeServer } from './helpers/fake-remote.js';
import { projectsSchema, quietEngineOptions } from './helpers/fixtures.js';

let users = 0;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function doc(n: number): CompactDoc {
  const rows: Json[][] = [];
  for (let i = 0; i < n; i++) rows.push([`p_${i}`, 'First', 'open']);
  return { version: 1, tables: { projects: { schema: projectsSchema, rows } } };
}

const locks = new InProcessLocks();

/** One tab of a device: a database and its sync engine on the device's IndexedDB. */
async function tab(server: FakeServer, indexedDB: IDBFactory, userId: string) {
  const db: UserDb = await createUserDb({ userId, indexedDB, IDBKeyRange });
  const remote = new FakeRemote(server);
  const engine = new SyncEngine({
    store: syncStoreOf(db.localStore),
    remote,
    userId,
    options: {
      ...quietEngineOptions(locks),
    },
  });
  db.attachSync(engine);
  const conflicts: SyncConflict[] = [];
  engine.conflicts$.subscribe((c) => conflicts.push(c));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await engine.close();
    await db.close();
  };
  closers.push(close);
  return { db, engine, remote, conflicts, close, t: db.untypedTable('projects') };
}

/** Whether the device has the row (false while it has not even the table yet). */
async function has(t: UserDb['untypedTable'] extends (n: string) => infer T ? T : never, key: string) {
  try {
    return (await t.get(key)) !== undefined;
  } catch {
    return false;
  }
}

function newDevice() {
  users += 1;
  return { indexedDB: new IDBFactory(), userId: `own_${process.pid}_${users}` };
}

describe('own writes for overridden reports', () => {
  it('a device that pushed a value, was closed and reopened (two tabs) learns once that a later rebase overrode it', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(doc(20), false);
    const devA = newDevice();
    const devB = newDevice();
    const a = await tab(server, devA.indexedDB, devA.userId);
    const b = await tab(server, devB.indexedDB, devB.userId);
    await eventually(async () => (await has(b.t, 'p_1')) && (await has(a.t, 'p_1')));

    // B edits offline (its pushes are held back), then A writes the same field and it is acknowledged
    b.remote.beforePatch = () => {
      throw new ForbiddenError('userdb_patch: held back by the test');
    };
    await b.t.update('p_1', { title: 'From B' });
    await a.t.update('p_1', { title: 'From A' });
    await a.db.flush();
    expect(await a.db.localStore.readOwnWrites()).toEqual([
      { cell: 'projects/p_1/title', value: 'From A', seq: 1 },
    ]);
    // B pulls A's change and rebases: its edit wins (it reaches the server last)
    await eventually(() => b.conflicts.some((c) => c.kind === 'field_changed'));

    // A is closed; it reopens in two tabs (one leads and pulls)
    await a.close();
    const a1 = await tab(server, devA.indexedDB, devA.userId);
    const a2 = await tab(server, devA.indexedDB, devA.userId);
    await eventually(() => a1.engine.status.leader || a2.engine.status.leader);

    // B pushes: its change declares the value it overrode
    b.remote.beforePatch = undefined;
    await b.db.flush();
    expect(server.doc.tables.projects?.rows[1]?.[1]).toBe('From B');
    await eventually(async () => (await a1.t.get('p_1'))?.title === 'From B');
    await eventually(() => [...a1.conflicts, ...a2.conflicts].length > 0);
    const expected: SyncConflict = {
      kind: 'overridden',
      table: 'projects',
      key: 'p_1',
      field: 'title',
      local: 'From A',
      remote: 'From B',
      resolution: 'dropped',
    };
    expect([...a1.conflicts, ...a2.conflicts]).toEqual([expected]);
    // reported, so forgotten: another leader pulling again reports nothing
    expect(await a1.db.localStore.readOwnWrites()).toEqual([]);
    const leader = a1.engine.status.leader ? a1 : a2;
    const other = leader === a1 ? a2 : a1;
    await leader.close();
    await eventually(() => other.engine.status.leader);
    await other.db.pull();
    await eventually(async () => (await other.t.get('p_1'))?.title === 'From B');
    expect([...a1.conflicts, ...a2.conflicts]).toEqual([expected]);
  });

  it('a value overwritten by a deliberate later edit is forgotten, and is no conflict', async () => {
    const server = new FakeServer();
    server.broadcast = true;
    server.write(doc(5), false);
    const devA = newDevice();
    const a = await tab(server, devA.indexedDB, devA.userId);
    await eventually(() => has(a.t, 'p_2'));
    await a.t.update('p_2', { title: 'Mine' });
    await a.t.update('p_3', { status: 'done' });
    await a.db.flush();
    expect((await a.db.localStore.readOwnWrites()).map((r) => r.cell).sort()).toEqual([
      'projects/p_2/title',
      'projects/p_3/status',
    ]);
    // another device writes p_2's title without declaring an override, and deletes p_3
    server.writeOps([
      { op: 'replace', path: '/tables/projects/rows/2/1', value: 'Theirs' },
      { op: 'remove', path: '/tables/projects/rows/3' },
    ]);
    await eventually(async () => (await a.t.get('p_3')) === undefined);
    expect(await a.db.localStore.readOwnWrites()).toEqual([]);
    expect(a.conflicts).toEqual([]);
  });

  it('the store keeps the newest writes up to its bound, in the push transaction; a version-2 store upgrades', async () => {
    const indexedDB = new IDBFactory();
    const userId = `own_bound_${process.pid}`;
    // a store of the previous schema version (log, no own table)
    const old = new Dexie(`userdb:${userId}`, { indexedDB, IDBKeyRange });
    old.version(2).stores({ meta: '', outbox: '++seq', quarantine: '++id', log: 'generation' });
    await old.open();
    old.close();
    const store = await LocalStore.open({ userId, indexedDB, IDBKeyRange, maxOwnWrites: 3 });
    closers.push(async () => store.close());
    await store.load();
    let token = 0;
    const push = async (seq: number, cells: [string, Json][]) => {
      const before = token === 0 ? null : `2026-01-01T00:00:0${token}.000000Z`;
      token += 1;
      const before2 = store.writeStats.own;
      await store.commitPush({
        newBase: doc(0),
        updatedAt: `2026-01-01T00:00:0${token}.000000Z`,
        upToSeq: seq,
        ops: [],
        before,
        ownWrites: cells.map(([cell, value]) => ({ cell, value })),
      });
      return store.writeStats.own - before2;
    };
    await push(1, [
      ['projects/a/title', 'a1'],
      ['projects/b/title', 'b1'],
    ]);
    await push(2, [['projects/c/title', 'c2']]);
    const bytes = await push(3, [
      ['projects/d/title', 'd3'],
      ['projects/a/title', 'a3'],
    ]);
    expect(bytes).toBeLessThan(256); // what the push wrote for them: O(cells written)
    // b (seq 1) is the oldest beyond the bound of 3; a was written again by push 3
    expect(await store.readOwnWrites()).toEqual([
      { cell: 'projects/c/title', value: 'c2', seq: 2 },
      { cell: 'projects/a/title', value: 'a3', seq: 3 },
      { cell: 'projects/d/title', value: 'd3', seq: 3 },
    ]);
    // a foreign change: a test that names another value reports nothing; the one that names ours does,
    // once; a row it overwrote is forgotten
    const change = {
      before: '2026-01-01T00:00:03.000000Z',
      after: '2026-01-01T00:00:04.000000Z',
      ops: [],
      keyed: [],
      clientId: 'other',
      batchSeq: 1,
      acked: null,
      exact: false,
    };
    const first = await store.appendLog({
      changes: [change],
      own: {
        checks: [
          { cell: 'projects/c/title', expected: 'not c' },
          { cell: 'projects/a/title', expected: 'a3' },
        ],
        overwritten: ['projects/d/'],
      },
    });
    expect(first.overridden).toEqual(['projects/a/title']);
    expect(await store.readOwnWrites()).toEqual([{ cell: 'projects/c/title', value: 'c2', seq: 2 }]);
    const again = await store.appendLog({
      changes: [{ ...change, before: change.after, after: '2026-01-01T00:00:05.000000Z' }],
      own: { checks: [{ cell: 'projects/a/title', expected: 'a3' }] },
    });
    expect(again.overridden).toEqual([]);
  });
});
