/**
 * The delta path of the sync engine against an in-memory server that keeps the change log of the
 * delta migration: Broadcast changes applied directly, chains pulled by delta, gaps, duplicates,
 * reordering, retention, a server without the log, own changes in a chain, compaction.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PatchOp } from '../../src/doc/index.js';
import type { RemoteDelta } from '../../src/remote/index.js';
import { SyncEngine, type SyncOptions } from '../../src/sync/engine.js';
import { ManualSignal } from '../../src/sync/env.js';
import { InProcessLocks } from '../../src/sync/leader.js';
import { chainFrom } from '../../src/sync/puller.js';
import type { SyncConflict } from '../../src/sync/rebase.js';
import { ManualClock } from './helpers/clock.js';
import { FakeRemote, FakeServer } from './helpers/fake-remote.js';
import { docWith, insert, rowsOf, setField } from './helpers/fixtures.js';
import { MemoryStore } from './helpers/memory-store.js';

const engines: SyncEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

function device(server: FakeServer, options: SyncOptions = {}) {
  const store = new MemoryStore();
  const remote = new FakeRemote(server);
  const clock = new ManualClock();
  const engine = new SyncEngine({
    store,
    remote,
    userId: 'user-1',
    options: {
      clock,
      online: new ManualSignal(true),
      focus: new ManualSignal(true),
      locks: new InProcessLocks(),
      random: () => 0.5,
      pollIntervalMs: 0,
      compactAfterMs: -1,
      ...options,
    },
  });
  engines.push(engine);
  const conflicts: SyncConflict[] = [];
  engine.conflicts$.subscribe((c) => conflicts.push(c));
  return { store, remote, clock, engine, conflicts };
}

/** Filler rows, so that a chain of a few changes is smaller than the document (else: the document). */
const filler: [string, string, string][] = Array.from({ length: 200 }, (_, i) => [
  `z_${String(i).padStart(3, '0')}`,
  `Filler ${i}`,
  'open',
]);

/** `rowsOf` without the filler rows. */
const named = (doc: Parameters<typeof rowsOf>[0]) =>
  rowsOf(doc).filter((r) => !String(r[0]).startsWith('z_'));

/** A server holding three projects (and filler), in Broadcast mode, and a device synced to it. */
async function synced(options: SyncOptions = {}) {
  const server = new FakeServer();
  server.broadcast = true;
  server.write(
    docWith([['p_1', 'First', 'open'], ['p_2', 'Second', 'open'], ['p_3', 'Third', 'open'], ...filler]),
    false,
  );
  const d = device(server, options);
  await d.clock.advance(0);
  expect(d.store.base.updatedAt).toBe(server.updatedAt);
  return { server, ...d };
}

const cell = (row: number, col: number, value: string): PatchOp[] => [
  { op: 'replace', path: `/tables/projects/rows/${row}/${col}`, value },
];

describe('delta sync: Broadcast', () => {
  it('applies a change whose before is the base token directly: no request, one log entry, keyed ops', async () => {
    const t = await synced();
    const pulls = t.server.pullCalls;
    const baseWrites = t.store.baseWrites;
    t.server.writeOps(cell(1, 1, 'Renamed'));
    await t.clock.advance(0);
    expect(t.server.pullCalls).toBe(pulls);
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.baseWrites).toBe(baseWrites);
    expect(t.store.log).toHaveLength(1);
    expect(t.store.log[0]?.keyed).toEqual([
      { op: 'replace', path: '/tables/projects/rows/p_2/title', value: 'Renamed' },
    ]);
  });

  it('a lost Broadcast: the next one does not continue the base, so it pulls the chain by delta', async () => {
    const t = await synced();
    let n = 0;
    t.server.onBroadcast = (_d, deliver) => {
      if (n++ > 0) deliver(); // the first is lost
    };
    t.server.writeOps(cell(0, 1, 'A'));
    t.server.writeOps(cell(2, 1, 'C'));
    await t.clock.advance(0);
    expect(t.server.answers.changes).toBe(1);
    expect(t.server.answers.doc).toBe(0);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.log.map((c) => c.after)).toEqual(t.server.log.slice(-2).map((d) => d.after));
  });

  it('a duplicated Broadcast is applied once', async () => {
    const t = await synced();
    t.server.onBroadcast = (_d, deliver) => {
      deliver();
      deliver();
    };
    t.server.writeOps(cell(0, 1, 'Once'));
    await t.clock.advance(0);
    expect(t.store.log).toHaveLength(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.server.pullCalls).toBe(0);
  });

  it('Broadcasts out of order: applied in token order, at most one pull, converged', async () => {
    const t = await synced();
    const held: (() => void)[] = [];
    t.server.onBroadcast = (_d, deliver) => held.push(deliver);
    t.server.writeOps(cell(0, 1, 'A'));
    t.server.writeOps(cell(1, 1, 'B'));
    held[1]?.();
    held[0]?.();
    await t.clock.advance(0);
    expect(t.server.pullCalls).toBeLessThanOrEqual(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
    expect(t.store.log).toHaveLength(2);
  });

  it('a Broadcast without ops (too large, or a reset) is a poke: pull', async () => {
    const t = await synced();
    t.server.write(docWith([['p_9', 'Reset', 'open']])); // logged with ops null
    await t.clock.advance(0);
    expect(t.server.answers.doc).toBe(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.log).toEqual([]);
  });

  it('a Broadcast whose ops do not apply falls back to a pull', async () => {
    const t = await synced();
    t.server.onBroadcast = (d, deliver) => {
      (d.ops as PatchOp[])[0] = { op: 'replace', path: '/tables/projects/rows/9999/1', value: 'x' };
      deliver();
    };
    t.server.writeOps(cell(0, 1, 'Good'));
    await t.clock.advance(0);
    expect(t.server.pullCalls).toBe(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
  });

  it('a Broadcast whose values do not fit the schema is refused and the server asked instead', async () => {
    const t = await synced();
    t.server.onBroadcast = (d, deliver) => {
      (d.ops as PatchOp[])[0] = { op: 'replace', path: '/tables/projects/rows/0/1', value: 42 };
      deliver();
    };
    t.server.writeOps(cell(0, 1, 'Good'));
    await t.clock.advance(0);
    expect(named(t.store.base.doc)[0]).toEqual(['p_1', 'Good', 'open']);
  });
});

describe('delta sync: pull', () => {
  it('catches up on many changes in one request that carries the changes, not the document', async () => {
    const t = await synced();
    t.server.onBroadcast = () => undefined; // asleep
    for (let i = 0; i < 20; i++) t.server.writeOps(cell(i % 3, 2, `s${i}`));
    t.server.onBroadcast = undefined;
    const pulls = t.server.pullCalls;
    await t.engine.pull();
    expect(t.server.pullCalls - pulls).toBe(1);
    expect(t.server.answers.changes).toBe(1);
    expect(t.store.log).toHaveLength(20);
    expect(t.store.base.doc).toEqual(t.server.doc);
  });

  it('asleep past the retention: the whole document', async () => {
    const t = await synced();
    t.server.onBroadcast = () => undefined;
    for (let i = 0; i < 5; i++) t.server.writeOps(cell(0, 1, `v${i}`));
    t.server.prune(2);
    await t.engine.pull();
    expect(t.server.answers.doc).toBe(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.log).toEqual([]);
  });

  it('a server without the change log: whole documents', async () => {
    const t = await synced();
    t.server.deltaSupported = false;
    t.server.onBroadcast = () => undefined;
    t.server.writeOps(cell(0, 1, 'Old server'));
    await t.engine.pull();
    expect(t.server.answers.doc).toBe(1);
    expect(t.store.base.doc).toEqual(t.server.doc);
  });

  it('rebases pending edits on the incoming ops: other fields survive, the same field reports a conflict', async () => {
    const t = await synced({ pushDebounceMs: 1_000_000 });
    t.server.onBroadcast = () => undefined;
    t.store.append(setField('p_1', 'title', 'First', 'Mine'));
    t.store.append(insert('p_4', 'Fourth'));
    t.server.writeOps(cell(0, 1, 'Theirs'));
    t.server.writeOps(cell(1, 2, 'done'));
    await t.engine.pull();
    expect(t.server.answers.changes).toBe(1);
    expect(t.conflicts).toMatchObject([
      {
        kind: 'field_changed',
        table: 'projects',
        key: 'p_1',
        field: 'title',
        local: 'Mine',
        remote: 'Theirs',
      },
    ]);
    await t.engine.flush();
    expect(named(t.server.doc)).toEqual([
      ['p_1', 'Mine', 'open'],
      ['p_2', 'Second', 'done'],
      ['p_3', 'Third', 'open'],
      ['p_4', 'Fourth', 'open'],
    ]);
  });

  it('an own change in a chain (its answer was lost) acknowledges the outbox instead of rebasing it', async () => {
    const t = await synced();
    t.server.onBroadcast = () => undefined;
    t.remote.dropPatchResponses = 1;
    t.store.append(setField('p_1', 'title', 'First', 'Mine'));
    await t.clock.advance(50); // pushed; the answer is lost
    expect(t.server.patchCalls).toBe(1);
    expect(t.store.outbox).toHaveLength(1);
    t.server.writeOps(cell(1, 1, 'Foreign'));
    await t.clock.advance(5_000); // retry: "already applied", then the chain [own, foreign]
    expect(t.server.patchCalls).toBe(2);
    expect(t.store.outbox).toEqual([]);
    expect(t.conflicts).toEqual([]);
    const own = t.store.log.find((c) => c.clientId === t.store.clientId);
    expect(own).toMatchObject({ exact: true, acked: 1 });
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(t.store.base.updatedAt).toBe(t.server.updatedAt);
  });

  it('an own Broadcast that arrives before its answer costs no request', async () => {
    const t = await synced();
    t.store.append(setField('p_1', 'title', 'First', 'Mine'));
    await t.clock.advance(50);
    expect(t.server.patchCalls).toBe(1);
    expect(t.server.pullCalls).toBe(0);
    expect(t.store.base.doc).toEqual(t.server.doc);
  });
});

describe('delta sync: compaction', () => {
  it('folds the log into the base once idle and past the threshold', async () => {
    const t = await synced({ compactAfterMs: 100 });
    for (let i = 0; i < 5; i++) t.server.writeOps(cell(0, 1, `v${i}`));
    await t.clock.advance(0);
    expect(t.store.log.length).toBeGreaterThanOrEqual(4);
    const writes = t.store.baseWrites;
    await t.clock.advance(200);
    expect(t.store.log).toEqual([]);
    expect(t.store.baseWrites).toBe(writes + 1);
  });
});

describe('chainFrom', () => {
  const d = (before: number, after: number, ops: PatchOp[] | null = []): RemoteDelta => ({
    before: `2026-01-01T00:00:0${before}.000000Z`,
    after: `2026-01-01T00:00:0${after}.000000Z`,
    ops,
    clientId: null,
    batchSeq: null,
  });
  const t0 = '2026-01-01T00:00:00.000000Z';

  it('orders, deduplicates and skips what the base has', () => {
    const chain = chainFrom(t0, [d(1, 2), d(0, 1), d(1, 2), d(2, 3)]);
    expect(chain).not.toBeNull();
    expect(chain).not.toBe('current');
    expect((chain as { changes: RemoteDelta[] }).changes.map((c) => c.after)).toEqual([
      d(0, 1).after,
      d(1, 2).after,
      d(2, 3).after,
    ]);
    expect(chainFrom(d(2, 3).after, [d(0, 1), d(1, 2)])).toBe('current');
  });

  it('a gap or a change without ops means pull', () => {
    expect(chainFrom(t0, [d(1, 2)])).toBeNull();
    expect(chainFrom(t0, [d(0, 1, null)])).toBeNull();
  });
});

describe('conflicts reach both sides', () => {
  it('the device whose acknowledged write was overridden by a later rebase learns it on conflicts$', async () => {
    const t = await synced();
    const b = device(t.server, { pushDebounceMs: 1_000_000 });
    await b.clock.advance(0);
    // B edits offline (its pushes wait), A writes the same field and it is acknowledged
    b.store.append(setField('p_1', 'title', 'First', 'From B'));
    t.store.append(setField('p_1', 'title', 'First', 'From A'));
    await t.engine.flush();
    expect(named(t.server.doc)[0]).toEqual(['p_1', 'From A', 'open']);
    // B pulls, rebases (its edit wins: it reaches the server last) and pushes
    await b.engine.pull();
    await b.engine.flush();
    expect(named(t.server.doc)[0]).toEqual(['p_1', 'From B', 'open']);
    await t.clock.advance(0);
    // the winner saw it while rebasing ...
    expect(b.conflicts).toMatchObject([
      { kind: 'field_changed', key: 'p_1', local: 'From B', remote: 'From A' },
    ]);
    // ... and the loser learns it from the change, which declared the value it overrode
    expect(t.conflicts).toEqual([
      {
        kind: 'overridden',
        table: 'projects',
        key: 'p_1',
        field: 'title',
        local: 'From A',
        remote: 'From B',
        resolution: 'dropped',
      },
    ]);
    expect(t.store.base.doc).toEqual(t.server.doc);
    expect(b.store.base.doc).toEqual(t.server.doc);
  });

  it('a later deliberate edit of a value this device wrote is not a conflict', async () => {
    const t = await synced();
    const b = device(t.server);
    await b.clock.advance(0);
    t.store.append(setField('p_1', 'title', 'First', 'From A'));
    await t.engine.flush();
    await b.clock.advance(0); // B has A's value
    b.store.append(setField('p_1', 'title', 'From A', 'Then B'));
    await b.engine.flush();
    await t.clock.advance(0);
    expect(named(t.store.base.doc)[0]).toEqual(['p_1', 'Then B', 'open']);
    expect(t.conflicts).toEqual([]);
    expect(b.conflicts).toEqual([]);
  });
});
