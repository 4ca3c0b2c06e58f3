import { afterEach, describe, expect, it } from 'vitest';
import { type KeyedTable, keyedOp } from '../../src/doc/index.js';
import {
  AuthError,
  BadPatchError,
  DatabaseClosedError,
  ForbiddenError,
  InvalidRemoteDocumentError,
  NetworkError,
  PayloadTooLargeError,
} from '../../src/errors.js';
import { SyncEngine, type SyncOptions } from '../../src/sync/engine.js';
import { ManualSignal } from '../../src/sync/env.js';
import { InProcessLocks } from '../../src/sync/leader.js';
import type { SyncConflict } from '../../src/sync/rebase.js';
import type { SyncStatus } from '../../src/sync/state.js';
import { ManualClock, settle } from './helpers/clock.js';
import { FakeRemote, FakeServer } from './helpers/fake-remote.js';
import {
  createProjects,
  docWith,
  insert,
  projectsSchema,
  remove,
  rowsOf,
  setField,
} from './helpers/fixtures.js';
import { MemoryStore } from './helpers/memory-store.js';

const engines: SyncEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

function setup(
  options: SyncOptions = {},
  shared?: { server?: FakeServer; store?: MemoryStore; locks?: InProcessLocks; clock?: ManualClock },
) {
  const server = shared?.server ?? new FakeServer();
  const store = shared?.store ?? new MemoryStore();
  const remote = new FakeRemote(server);
  const clock = shared?.clock ?? new ManualClock();
  const online = new ManualSignal(true);
  const focus = new ManualSignal(true);
  const locks = shared?.locks ?? new InProcessLocks();
  const engine = new SyncEngine({
    store,
    remote,
    userId: 'user-1',
    options: { clock, online, focus, locks, random: () => 0.5, pollIntervalMs: 0, ...options },
  });
  engines.push(engine);
  const statuses: SyncStatus[] = [];
  const conflicts: SyncConflict[] = [];
  engine.status$.subscribe((s) => statuses.push(s));
  engine.conflicts$.subscribe((c) => conflicts.push(c));
  return { server, store, remote, clock, online, focus, locks, engine, statuses, conflicts };
}

/** A started engine whose base holds the projects table (synced). */
async function synced(options: SyncOptions = {}) {
  const t = setup(options);
  t.server.write(docWith([['p_1', 'First', 'open']]), false);
  await t.clock.advance(0);
  expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
  return t;
}

describe('SyncEngine: start', () => {
  it('becomes leader, creates the server row with userdb_init and stores it as the base', async () => {
    const t = setup();
    t.server.write(docWith([['p_1', 'First', 'open']]), false);
    await t.clock.advance(0);
    expect(t.engine.status).toMatchObject({ leader: true, state: 'idle', online: true, pendingCount: 0 });
    expect(t.remote.calls[0]).toBe('init');
    expect(t.store.base).toEqual({ doc: t.server.doc, updatedAt: t.server.updatedAt });
  });

  it('rebases writes made before the first sync on the server document, then pushes them', async () => {
    const t = setup();
    t.server.write(docWith([['p_1', 'First', 'open']]), false);
    t.store.append(insert('p_2', 'Offline'));
    await t.clock.advance(100);
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'First', 'open'],
      ['p_2', 'Offline', 'open'],
    ]);
    expect(t.store.outbox).toEqual([]);
  });
});

describe('SyncEngine: push', () => {
  it('debounces a burst of writes into one request and stores the new base with the entries gone', async () => {
    const t = await synced();
    for (let i = 0; i < 20; i++) t.store.append(insert(`n_${i}`, `row ${i}`));
    await settle();
    expect(t.engine.status.pendingCount).toBe(20);
    expect(t.server.patchCalls).toBe(0);
    await t.clock.advance(50);
    expect(t.server.patchCalls).toBe(1);
    expect(t.server.doc.tables.projects?.rows).toHaveLength(21);
    expect(t.store.outbox).toEqual([]);
    expect(t.store.base).toEqual({ doc: t.server.doc, updatedAt: t.server.updatedAt });
    expect(t.engine.status).toMatchObject({ state: 'idle', pendingCount: 0, lastSyncedAt: t.clock.now() });
    expect(t.statuses.some((s) => s.state === 'pushing')).toBe(true);
  });

  it('splits the outbox at the byte cap, one request in flight at a time', async () => {
    const t = await synced({ maxBatchBytes: 300 });
    for (let i = 0; i < 10; i++) t.store.append(insert(`n_${i}`, 'x'.repeat(50)));
    let inFlight = 0;
    let maxInFlight = 0;
    const patch = t.remote.patch.bind(t.remote);
    t.remote.patch = async (b) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await settle(1);
      try {
        return await patch(b);
      } finally {
        inFlight--;
      }
    };
    await t.clock.advance(50);
    expect(t.server.patchCalls).toBeGreaterThan(2);
    expect(maxInFlight).toBe(1);
    expect(t.server.doc.tables.projects?.rows).toHaveLength(11);
  });

  it('flush() pushes at once and resolves when the server acknowledged', async () => {
    const t = await synced({ pushDebounceMs: 10_000 });
    t.store.append(insert('p_2', 'Second'));
    await t.engine.flush();
    expect(t.store.outbox).toEqual([]);
    expect(rowsOf(t.server.doc)).toHaveLength(2);
  });

  it('flush() on an empty outbox resolves at once', async () => {
    const t = await synced();
    await expect(t.engine.flush()).resolves.toBeUndefined();
  });
});

describe('SyncEngine: conflicts (PT409)', () => {
  it('pulls, rebases and retries at once when another client wrote first', async () => {
    const t = await synced();
    t.store.append(setField('p_1', 'title', 'First', 'Mine'));
    let foreign = true;
    t.remote.beforePatch = () => {
      if (!foreign) return;
      foreign = false;
      t.server.write(docWith([['p_1', 'First', 'done']]), false);
    };
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc)).toEqual([['p_1', 'Mine', 'done']]);
    expect(t.store.outbox).toEqual([]);
    expect(t.conflicts).toEqual([]);
    expect(t.server.patchCalls).toBe(2);
  });

  it('backs off with jitter after several conflicts in a row, then retries', async () => {
    const t = await synced({ maxImmediateConflicts: 2, backoff: { baseMs: 1000, maxMs: 8000 } });
    t.store.append(insert('p_2', 'Second'));
    let n = 0;
    t.remote.beforePatch = () => {
      if (n++ < 3) t.server.write(docWith([['p_1', `Foreign ${n}`, 'open']]), false);
    };
    await t.clock.advance(50);
    expect(t.engine.status.state).toBe('backoff');
    expect(t.engine.status.retryAt).toBe(t.clock.now() + 750); // base 1000, equal jitter at 0.5
    expect(t.store.outbox).toHaveLength(1);
    await t.clock.advance(750);
    expect(t.engine.status.state).toBe('idle');
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'Foreign 3', 'open'],
      ['p_2', 'Second', 'open'],
    ]);
  });
});

describe('SyncEngine: a server that went back in time', () => {
  it('adopts the server document when the conflict names an older token, then pushes', async () => {
    const t = await synced();
    t.server.write(docWith([['p_1', 'Newer', 'open']]));
    await settle();
    expect(t.store.base.doc).toEqual(t.server.doc);
    // restored from a backup: older document, older token
    t.server.doc = docWith([['p_1', 'Restored', 'open']]);
    t.server.micros -= 10_000n;
    t.store.append(insert('p_2', 'Mine'));
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'Restored', 'open'],
      ['p_2', 'Mine', 'open'],
    ]);
    expect(t.store.base).toEqual({ doc: t.server.doc, updatedAt: t.server.updatedAt });
  });
});

describe('SyncEngine: exactly-once', () => {
  it('resends a batch whose answer was lost with the same batch_seq; the server does not apply it twice', async () => {
    const t = await synced();
    t.store.append(insert('p_2', 'Second'));
    t.remote.dropPatchResponses = 1;
    const sent: { seq: number; ops: string }[] = [];
    t.remote.beforePatch = (b) => sent.push({ seq: b.batchSeq, ops: JSON.stringify(b.ops) });
    await t.clock.advance(50);
    expect(t.engine.status.state).toBe('offline');
    expect(t.store.outbox).toHaveLength(1); // kept: the outcome is unknown
    // a write after the lost answer: a new batch would take it along under a new batch_seq (and
    // conflict); the resend must be exactly the unanswered batch, answered "already applied"
    t.store.append(insert('p_3', 'Third'));
    await t.clock.advance(60_000);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(sent[1]).toEqual(sent[0]);
    expect(sent[2]?.seq).toBeGreaterThan(sent[0]?.seq ?? 0);
    expect(t.server.patchCalls).toBe(sent.length);
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'First', 'open'],
      ['p_2', 'Second', 'open'],
      ['p_3', 'Third', 'open'],
    ]);
    expect(t.store.outbox).toEqual([]);
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
    expect(t.conflicts).toEqual([]);
  });

  it('a new instance (reload) resends the unresolved batch before anything else', async () => {
    const server = new FakeServer();
    const store = new MemoryStore('device-1');
    const a = setup({}, { server, store });
    server.write(docWith([['p_1', 'First', 'open']]), false);
    await a.clock.advance(0);
    store.append(insert('p_2', 'Second'));
    a.remote.dropPatchResponses = 1;
    await a.clock.advance(50);
    await a.engine.close();
    store.append(insert('p_3', 'Third'));
    const b = setup({}, { server, store });
    const seqs: number[] = [];
    b.remote.beforePatch = (x) => seqs.push(x.batchSeq);
    await b.clock.advance(100);
    expect(seqs[0]).toBe(1);
    expect(rowsOf(server.doc).map((r) => r[0])).toEqual(['p_1', 'p_2', 'p_3']);
    expect(store.outbox).toEqual([]);
  });
});

describe('SyncEngine: errors', () => {
  it('retries network errors with growing, capped backoff forever and keeps the outbox', async () => {
    const t = await synced({ backoff: { baseMs: 100, maxMs: 400 } });
    t.store.append(insert('p_2', 'Second'));
    t.remote.offline = true;
    await t.clock.advance(50);
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = t.engine.status;
      expect(s).toMatchObject({ state: 'offline', online: false, pendingCount: 1 });
      expect(s.lastError).toBeInstanceOf(NetworkError);
      delays.push((s.retryAt ?? 0) - t.clock.now());
      await t.clock.advance((s.retryAt ?? 0) - t.clock.now());
    }
    expect(delays).toEqual([75, 150, 300, 300, 300]);
    t.remote.offline = false;
    await t.clock.advance(400);
    expect(t.engine.status).toMatchObject({ state: 'idle', online: true, lastError: null, pendingCount: 0 });
  });

  it('retries at once when the platform comes back online', async () => {
    const t = await synced({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    t.store.append(insert('p_2', 'Second'));
    t.remote.offline = true;
    await t.clock.advance(50);
    t.online.set(false);
    await settle();
    expect(t.engine.status.state).toBe('offline');
    t.remote.offline = false;
    t.online.set(true);
    await settle();
    expect(t.store.outbox).toEqual([]);
    expect(t.engine.status.state).toBe('idle');
  });

  it('holds an entry the server refuses for good, with the later entries on the same rows; the rest syncs', async () => {
    const t = await synced();
    t.store.append(insert('p_2', 'Second')); // refused
    t.store.append(setField('p_2', 'title', 'Second', 'Second, edited')); // same row: waits for it
    t.store.append(insert('p_3', 'Third')); // independent
    t.store.append(setField('p_1', 'title', 'First', 'First, edited')); // independent
    const err = new BadPatchError('userdb_patch: op 0 rejected');
    t.remote.failNext.push(err, err); // the batch, then the single entry it is narrowed to
    await t.clock.advance(50);
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'First, edited', 'open'],
      ['p_3', 'Third', 'open'],
    ]);
    expect(t.store.outbox).toEqual([]);
    expect(t.store.held.map((h) => h.seq)).toEqual([1, 2]);
    expect(t.store.held[0]?.reason).toContain('op 0 rejected');
    expect(t.store.held[1]?.reason).toContain('"waitsFor":1');
    expect(t.engine.status).toMatchObject({ state: 'idle', pendingCount: 0 });
    // later writes keep syncing
    t.store.append(insert('p_4', 'Fourth'));
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc).map((r) => r[0])).toEqual(['p_1', 'p_3', 'p_4']);
  });

  it('flush() rejects with the permanent error that stopped pushing', async () => {
    const t = await synced({ pushDebounceMs: 10_000 });
    t.store.append(insert('p_2', 'Second'));
    t.remote.failNext.push(new BadPatchError('nope'));
    await expect(t.engine.flush()).rejects.toBeInstanceOf(BadPatchError);
    expect(t.store.outbox).toHaveLength(0);
    expect(t.store.held).toHaveLength(1); // held, not dropped
  });

  it('a session of another user (403) stops pushing with the outbox intact, and resumes on flush()', async () => {
    const t = await synced();
    t.store.append(insert('p_2', 'Second'));
    t.remote.failNext.push(new ForbiddenError('forbidden'));
    await t.clock.advance(50);
    expect(t.engine.status.state).toBe('error');
    expect(t.engine.status.lastError).toBeInstanceOf(ForbiddenError);
    t.store.append(insert('p_3', 'Third'));
    await t.clock.advance(120_000);
    expect(t.server.patchCalls).toBe(0);
    expect(t.store.outbox).toHaveLength(2);
    await t.engine.flush();
    expect(rowsOf(t.server.doc)).toHaveLength(3);
    expect(t.engine.status).toMatchObject({ state: 'idle', lastError: null });
  });

  it('halves the batch on 413 when it has several entries; holds a single oversized entry', async () => {
    const t = await synced({ maxBatchBytes: 10_000 });
    for (let i = 0; i < 8; i++) t.store.append(insert(`n_${i}`, 'x'));
    const sizes: number[] = [];
    t.remote.beforePatch = (b) => sizes.push(b.ops.length);
    t.remote.failNext.push(new PayloadTooLargeError('too big'));
    await t.clock.advance(50);
    expect(t.server.doc.tables.projects?.rows).toHaveLength(9);
    expect(Math.max(...sizes)).toBeLessThan(8);
    t.store.append(insert('big', 'y'));
    t.store.append(insert('small', 'z'));
    t.remote.failNext.push(new PayloadTooLargeError('too big'), new PayloadTooLargeError('too big'));
    await t.clock.advance(50);
    await t.clock.advance(50);
    expect(t.store.held.map((h) => h.ops)).toEqual([insert('big', 'y')]);
    expect(rowsOf(t.server.doc).map((r) => r[0])).toContain('small');
    expect(t.engine.status.state).toBe('idle');
    // once the entry at fault is held, batches are as large as configured again
    const calls = t.server.patchCalls;
    for (let i = 0; i < 8; i++) t.store.append(insert(`m_${i}`, 'x'));
    await t.clock.advance(50);
    expect(t.server.patchCalls).toBe(calls + 1);
  });

  it('treats an expired session as transient and retries when the token is refreshed', async () => {
    const t = await synced({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    t.store.append(insert('p_2', 'Second'));
    t.remote.failNext.push(new AuthError('JWT expired'));
    await t.clock.advance(50);
    expect(t.engine.status.lastError).toBeInstanceOf(AuthError);
    expect(t.engine.status.state).toBe('backoff');
    for (const l of t.remote.authListeners) l({ type: 'token_refreshed', userId: 'user-1' });
    await settle();
    expect(t.store.outbox).toEqual([]);
  });

  it('surfaces an invalid server document, keeps local data, and resumes once it is repaired', async () => {
    const t = await synced();
    t.remote.failNext.push(new InvalidRemoteDocumentError('bad doc'));
    t.server.write(docWith([['p_1', 'Foreign', 'open']]), false);
    t.server.poke({ updatedAt: t.server.updatedAt, snapshot: null });
    await settle();
    expect(t.engine.status.state).toBe('error');
    const baseBefore = structuredClone(t.store.base);
    t.store.append(insert('p_2', 'Mine'));
    await t.clock.advance(1000);
    expect(t.server.patchCalls).toBe(0);
    expect(t.store.outbox).toHaveLength(1);
    expect(t.store.base).toEqual(baseBefore);
    t.server.poke({ updatedAt: t.server.updatedAt, snapshot: null }); // repaired: the next pull parses
    await t.clock.advance(100);
    expect(t.engine.status).toMatchObject({ state: 'idle', lastError: null });
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'Foreign', 'open'],
      ['p_2', 'Mine', 'open'],
    ]);
  });
});

describe('SyncEngine: pull', () => {
  it('ignores the Realtime echo of its own push', async () => {
    const t = await synced();
    t.store.append(insert('p_2', 'Second'));
    const before = t.remote.calls.length;
    await t.clock.advance(50);
    expect(t.remote.calls.slice(before)).toEqual(['patch']);
  });

  it('uses a whole Realtime record without a request', async () => {
    const t = await synced();
    const before = t.remote.calls.length;
    t.server.write(docWith([['p_1', 'Foreign', 'open']]));
    await settle();
    expect(t.remote.calls.length).toBe(before);
    expect(t.store.base).toEqual({ doc: t.server.doc, updatedAt: t.server.updatedAt });
  });

  it('calls userdb_pull(since) for a bare poke, and coalesces a burst of pokes', async () => {
    const t = await synced();
    const before = t.server.pullCalls;
    t.server.write(docWith([['p_1', 'Foreign', 'open']]), false);
    for (let i = 0; i < 10; i++) t.server.poke({ updatedAt: t.server.updatedAt, snapshot: null });
    await settle();
    expect(t.server.pullCalls - before).toBeGreaterThanOrEqual(1);
    expect(t.server.pullCalls - before).toBeLessThanOrEqual(2);
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
  });

  it('pulls on focus, on coming online, and on the safety poll', async () => {
    const t = setup({ pollIntervalMs: 30_000 });
    await t.clock.advance(0);
    const count = () => t.remote.calls.filter((c) => c === 'pull').length;
    const n0 = count();
    t.focus.pulse();
    await settle();
    expect(count()).toBe(n0 + 1);
    t.online.set(false);
    t.online.set(true);
    await settle();
    expect(count()).toBe(n0 + 2);
    await t.clock.advance(30_000);
    expect(count()).toBe(n0 + 3);
  });

  it('pull() resolves after a pull that started after the call', async () => {
    const t = await synced();
    t.server.write(docWith([['p_1', 'Foreign', 'open']]), false);
    await t.engine.pull();
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
  });

  it('pull() rejects with the error of that pull', async () => {
    const t = await synced();
    t.remote.failNext.push(new NetworkError('down'));
    await expect(t.engine.pull()).rejects.toBeInstanceOf(NetworkError);
  });
});

describe('SyncEngine: conflict rules', () => {
  it('same field on both sides: the local write reaches the server last and wins; the loser is reported', async () => {
    const t = await synced();
    t.remote.offline = true;
    t.store.append(setField('p_1', 'title', 'First', 'Local'));
    await t.clock.advance(50);
    t.server.write(docWith([['p_1', 'Remote', 'open']]), false);
    t.remote.offline = false;
    await t.clock.advance(60_000);
    expect(rowsOf(t.server.doc)).toEqual([['p_1', 'Local', 'open']]);
    expect(t.conflicts).toEqual([
      expect.objectContaining({
        kind: 'field_changed',
        table: 'projects',
        key: 'p_1',
        field: 'title',
        local: 'Local',
        remote: 'Remote',
        resolution: 'applied',
      }),
    ]);
  });

  it('an onConflict hook can keep the remote value or merge', async () => {
    const t = await synced({
      onConflict: {
        projects: (c) =>
          c.field === 'title' ? { value: `${String(c.remote)}+${String(c.local)}` } : 'remote',
      },
    });
    t.store.append([...setField('p_1', 'title', 'First', 'L'), ...setField('p_1', 'status', 'open', 'L')]);
    t.server.write(docWith([['p_1', 'R', 'R']]), false);
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc)).toEqual([['p_1', 'R+L', 'R']]);
    expect(t.conflicts.map((c) => [c.field, c.resolution])).toEqual([
      ['title', 'merged'],
      ['status', 'dropped'],
    ]);
  });

  it('an onConflict decision holds for an entry that also creates a table (one transaction)', async () => {
    const notes: KeyedTable = { schema: projectsSchema, rows: {} };
    const t = await synced({
      onConflict: {
        projects: (c) =>
          c.field === 'title' ? 'remote' : { value: `${String(c.remote)}+${String(c.local)}` },
      },
    });
    // one outbox entry: create a table and edit another (kept in its original form in the outbox)
    t.store.append([
      keyedOp.addTable('notes', notes),
      ...setField('p_1', 'title', 'First', 'L'),
      ...setField('p_1', 'status', 'open', 'L'),
    ]);
    t.server.write(docWith([['p_1', 'R', 'R']]), false);
    await t.clock.advance(50);
    expect(t.store.outbox).toEqual([]);
    expect(rowsOf(t.server.doc)).toEqual([['p_1', 'R', 'R+L']]);
    expect(t.server.doc.tables.notes).toBeDefined();
    expect(t.conflicts.map((c) => [c.field, c.resolution])).toEqual([
      ['title', 'dropped'],
      ['status', 'merged'],
    ]);
  });

  it('update vs remote delete: the delete wins and the dropped edit is reported once', async () => {
    const t = await synced();
    t.store.append(setField('p_1', 'title', 'First', 'Edited'));
    t.server.write(docWith([]), false);
    await t.clock.advance(50);
    await t.engine.pull();
    expect(rowsOf(t.server.doc)).toEqual([]);
    expect(t.store.outbox).toEqual([]);
    expect(t.conflicts).toHaveLength(1);
    expect(t.conflicts[0]).toMatchObject({
      kind: 'row_deleted',
      table: 'projects',
      key: 'p_1',
      resolution: 'dropped',
    });
  });

  it('different rows and different fields of one row both survive', async () => {
    const t = await synced();
    t.store.append(setField('p_1', 'title', 'First', 'Local title'));
    t.store.append(insert('p_2', 'Local row'));
    t.server.write(
      docWith([
        ['p_1', 'First', 'remote status'],
        ['p_3', 'Remote row', 'open'],
      ]),
      false,
    );
    await t.clock.advance(50);
    expect(rowsOf(t.server.doc)).toEqual([
      ['p_1', 'Local title', 'remote status'],
      ['p_2', 'Local row', 'open'],
      ['p_3', 'Remote row', 'open'],
    ]);
    expect(t.conflicts).toEqual([]);
  });

  it('a table created on both devices keeps the rows of both', async () => {
    const t = setup();
    await t.clock.advance(0);
    t.remote.offline = true;
    t.store.append(createProjects());
    t.store.append(insert('local', 'L'));
    await t.clock.advance(50);
    t.server.write(docWith([['remote', 'R', 'open']]), false);
    t.remote.offline = false;
    await t.clock.advance(60_000);
    expect(rowsOf(t.server.doc).map((r) => r[0])).toEqual(['local', 'remote']);
  });

  it('a table creation rebased twice keeps the rows written remotely in between', async () => {
    const t = setup();
    await t.clock.advance(0);
    t.remote.failNext.push(new NetworkError('down'), new NetworkError('down'));
    t.store.append(createProjects());
    t.server.write(docWith([['r_1', 'first remote', 'open']]));
    await settle();
    t.server.write(
      docWith([
        ['r_1', 'first remote', 'open'],
        ['r_2', 'second remote', 'open'],
      ]),
    );
    await t.clock.advance(60_000);
    expect(t.store.outbox).toEqual([]);
    expect(rowsOf(t.server.doc).map((r) => r[0])).toEqual(['r_1', 'r_2']);
  });

  it('removal of a row already deleted remotely is dropped silently', async () => {
    const t = await synced();
    t.store.append(remove('p_1'));
    t.server.write(docWith([]), false);
    await t.clock.advance(50);
    expect(t.store.outbox).toEqual([]);
    expect(t.conflicts).toEqual([]);
  });
});

describe('SyncEngine: leadership', () => {
  it('one leader per user; the follower takes over when the leader closes', async () => {
    const server = new FakeServer();
    const store = new MemoryStore('device-1');
    const locks = new InProcessLocks();
    const clock = new ManualClock();
    const a = setup({}, { server, store, locks, clock });
    const b = setup({}, { server, store, locks, clock });
    server.write(docWith([]), false);
    await clock.advance(0);
    expect(a.engine.status.leader).toBe(true);
    expect(b.engine.status.leader).toBe(false);
    expect(b.remote.calls).toEqual([]);
    b.online.set(false); // a follower's status follows the platform too
    expect(b.engine.status).toMatchObject({ online: false, state: 'offline' });
    b.online.set(true);
    await a.engine.close();
    await clock.advance(0);
    expect(b.engine.status.leader).toBe(true);
    store.append(insert('p_9', 'from b'));
    await clock.advance(50);
    expect(rowsOf(server.doc).map((r) => r[0])).toContain('p_9');
  });

  it('a follower flush() resolves when the leader pushed the entries', async () => {
    const server = new FakeServer();
    const store = new MemoryStore('device-1');
    const locks = new InProcessLocks();
    const clock = new ManualClock();
    const a = setup({}, { server, store, locks, clock });
    const b = setup({}, { server, store, locks, clock });
    server.write(docWith([]), false);
    await clock.advance(0);
    store.append(insert('p_1', 'x'));
    const done = b.engine.flush();
    await clock.advance(50);
    await expect(done).resolves.toBeUndefined();
    expect(a.engine.status.leader).toBe(true);
  });
});

describe('SyncEngine: close', () => {
  it('stops timers and subscriptions, completes status$, and rejects later calls', async () => {
    const t = await synced({ pollIntervalMs: 10_000 });
    let completed = false;
    t.engine.status$.subscribe({ complete: () => (completed = true) });
    await t.engine.close();
    expect(completed).toBe(true);
    expect(t.clock.pending).toEqual([]);
    expect(t.server.subscribers.size).toBe(0);
    await expect(t.engine.flush()).rejects.toBeInstanceOf(DatabaseClosedError);
    await expect(t.engine.pull()).rejects.toBeInstanceOf(DatabaseClosedError);
    await t.engine.close();
  });

  it('rejects a pending flush() when closed', async () => {
    const t = await synced();
    t.store.append(insert('p_2', 'x'));
    t.remote.offline = true;
    const done = t.engine.flush();
    await settle();
    await t.engine.close();
    await expect(done).rejects.toBeInstanceOf(DatabaseClosedError);
  });
});
