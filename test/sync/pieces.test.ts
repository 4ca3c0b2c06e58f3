import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  AuthError,
  BadPatchError,
  ConflictError,
  ForbiddenError,
  InvalidRemoteDocumentError,
  NetworkError,
  PayloadTooLargeError,
  ServerError,
  StorageError,
} from '../../src/errors.js';
import { backoffDelay } from '../../src/sync/backoff.js';
import { asUserDbError, isTransient } from '../../src/sync/classify.js';
import { browserFocusSignal, browserOnlineSignal, ManualSignal } from '../../src/sync/env.js';
import { dependentsOf, heldReason, parseHeldReason } from '../../src/sync/held.js';
import { InProcessLocks, LeaderElection, lockScopeFor, webLocks } from '../../src/sync/leader.js';
import { bytesOf, pushOnce, utf8Bytes } from '../../src/sync/pusher.js';
import { rebaseOutbox } from '../../src/sync/rebase.js';
import { initialSyncState, reduce, sameStatus, toStatus } from '../../src/sync/state.js';
import { settle } from './helpers/clock.js';
import { FakeRemote, FakeServer } from './helpers/fake-remote.js';
import { docWith, insert, remove, setField } from './helpers/fixtures.js';
import { MemoryStore } from './helpers/memory-store.js';

describe('backoffDelay', () => {
  it('doubles from the base, caps at the max, and jitters in the upper half', () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, () => 1, opts))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, () => 0, opts))).toEqual([
      50, 100, 200, 400, 500, 500,
    ]);
    expect(backoffDelay(1000, () => 0.5, opts)).toBe(750);
    expect(backoffDelay(0, () => 1, opts)).toBe(100);
    expect(backoffDelay(3, () => 7, opts)).toBe(400); // a random source out of range is clamped
  });

  it('defaults to 1 s doubling up to 60 s', () => {
    expect(backoffDelay(1, () => 1)).toBe(1000);
    expect(backoffDelay(20, () => 1)).toBe(60_000);
  });
});

describe('error classification', () => {
  it('retries network, server, storage and expired-session failures; stops on the rest', () => {
    expect(isTransient(new NetworkError('x'))).toBe(true);
    expect(isTransient(new ServerError('x', 503))).toBe(true);
    expect(isTransient(new StorageError('x'))).toBe(true);
    expect(isTransient(new AuthError('x'))).toBe(true);
    expect(isTransient(new ForbiddenError('x'))).toBe(false);
    expect(isTransient(new BadPatchError('x'))).toBe(false);
    expect(isTransient(new PayloadTooLargeError('x'))).toBe(false);
    expect(isTransient(new InvalidRemoteDocumentError('x'))).toBe(false);
    expect(isTransient(new ConflictError('x', null))).toBe(false);
  });

  it('wraps unexpected exceptions as a ServerError naming them', () => {
    const e = asUserDbError(new TypeError('boom'));
    expect(e).toBeInstanceOf(ServerError);
    expect(e.message).toContain('TypeError: boom');
    const typed = new BadPatchError('x');
    expect(asUserDbError(typed)).toBe(typed);
  });
});

describe('sync state', () => {
  it('derives the status: activity first, then error, offline, backoff, idle', () => {
    let s = initialSyncState(true);
    expect(toStatus(s)).toMatchObject({ state: 'idle', online: true, leader: false, lastError: null });
    s = reduce(s, { type: 'leader', leader: true });
    s = reduce(s, { type: 'start', activity: 'pushing' });
    expect(toStatus(s).state).toBe('pushing');
    const down = new NetworkError('down');
    s = reduce(s, { type: 'transient_failure', error: down, network: true, retryAt: 5 });
    expect(toStatus(s)).toMatchObject({ state: 'offline', online: false, lastError: down, retryAt: 5 });
    s = reduce(s, { type: 'retry_due' });
    s = reduce(s, { type: 'pushed', at: 10 });
    expect(toStatus(s)).toMatchObject({ state: 'idle', online: true, lastError: null, lastSyncedAt: 10 });
    const auth = new AuthError('expired');
    s = reduce(s, { type: 'transient_failure', error: auth, network: false, retryAt: 20 });
    expect(toStatus(s)).toMatchObject({ state: 'backoff', online: true, lastError: auth });
    const bad = new BadPatchError('bad');
    s = reduce(s, { type: 'push_blocked', error: bad });
    expect(toStatus(s)).toMatchObject({ state: 'error', lastError: bad });
    s = reduce(s, { type: 'pulled', at: 30 });
    expect(toStatus(s)).toMatchObject({ state: 'error', lastError: bad }); // a pull does not clear a push error
    s = reduce(s, { type: 'unblock_push' });
    expect(toStatus(s)).toMatchObject({ state: 'idle', lastError: null });
    s = reduce(s, { type: 'platform_online', online: false });
    expect(toStatus(s)).toMatchObject({ state: 'offline', online: false });
    const closed = reduce(s, { type: 'closed' });
    expect(reduce(closed, { type: 'leader', leader: true })).toBe(closed);
  });

  it('counts conflicts in a row and resets them on success', () => {
    let s = initialSyncState(true);
    s = reduce(reduce(s, { type: 'conflict' }), { type: 'conflict' });
    expect(s.conflicts).toBe(2);
    expect(reduce(s, { type: 'pushed', at: 1 }).conflicts).toBe(0);
  });

  it('compares statuses structurally', () => {
    const s = initialSyncState(true);
    expect(sameStatus(toStatus(s), toStatus({ ...s }))).toBe(true);
    expect(sameStatus(toStatus(s), toStatus(reduce(s, { type: 'pending', count: 1 })))).toBe(false);
  });
});

describe('signals', () => {
  it('ManualSignal notifies changes only, and pulse() always', () => {
    const sig = new ManualSignal(true);
    const seen: boolean[] = [];
    const off = sig.subscribe((v) => seen.push(v));
    sig.set(true);
    sig.set(false);
    sig.pulse();
    off();
    sig.set(true);
    expect(seen).toEqual([false, false]);
    expect(sig.get()).toBe(true);
  });

  it('browser signals degrade to always online / focused without a window', () => {
    const online = browserOnlineSignal();
    const focus = browserFocusSignal();
    expect(online.get()).toBe(true);
    expect(focus.get()).toBe(true);
    online.subscribe(() => undefined)();
    focus.subscribe(() => undefined)();
  });

  it('browser signals follow window events where there is a window', () => {
    const listeners = new Map<string, () => void>();
    const win = {
      addEventListener: (t: string, l: () => void) => listeners.set(t, l),
      removeEventListener: (t: string) => listeners.delete(t),
    };
    const g = globalThis as { window?: unknown };
    const nav = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    g.window = win;
    Object.defineProperty(globalThis, 'navigator', { value: { onLine: false }, configurable: true });
    try {
      const online = browserOnlineSignal();
      const seen: boolean[] = [];
      const off = online.subscribe((v) => seen.push(v));
      expect(online.get()).toBe(false);
      listeners.get('online')?.();
      expect(seen).toEqual([false]);
      off();
      expect(listeners.size).toBe(0);
    } finally {
      delete g.window;
      if (nav) Object.defineProperty(globalThis, 'navigator', nav);
    }
  });
});

describe('leader election', () => {
  it('one leader per name; the next waiter takes over when it closes', async () => {
    const locks = new InProcessLocks();
    const a = new LeaderElection(locks, 'l');
    const b = new LeaderElection(locks, 'l');
    const other = new LeaderElection(locks, 'other');
    await settle();
    expect([a.isLeader, b.isLeader, other.isLeader]).toEqual([true, false, true]);
    a.close();
    await settle();
    expect([a.isLeader, b.isLeader]).toEqual([false, true]);
    b.close();
    other.close();
  });

  it('a waiter that closes before leading never leads and leaves the queue', async () => {
    const locks = new InProcessLocks();
    const a = new LeaderElection(locks, 'l');
    const b = new LeaderElection(locks, 'l');
    const c = new LeaderElection(locks, 'l');
    await settle();
    b.close();
    a.close();
    await settle();
    expect([b.isLeader, c.isLeader]).toEqual([false, true]);
    expect(await firstValueFrom(c.isLeader$)).toBe(true);
    c.close();
    c.close(); // idempotent
  });

  it('lock scopes: one per key object, the shared one without', () => {
    const k1 = {};
    expect(lockScopeFor(k1)).toBe(lockScopeFor(k1));
    expect(lockScopeFor(k1)).not.toBe(lockScopeFor({}));
    expect(lockScopeFor(undefined)).toBe(InProcessLocks.shared);
  });

  it('uses navigator.locks when present', async () => {
    const requested: string[] = [];
    const nav = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', {
      value: {
        locks: {
          request: async (name: string, _o: unknown, cb: () => Promise<void>) => {
            requested.push(name);
            await cb();
          },
        },
      },
      configurable: true,
    });
    try {
      const locks = webLocks();
      expect(locks).toBeDefined();
      const e = new LeaderElection(locks!, 'userdb:leader:u');
      await settle();
      expect(e.isLeader).toBe(true);
      expect(requested).toEqual(['userdb:leader:u']);
      e.close();
    } finally {
      if (nav) Object.defineProperty(globalThis, 'navigator', nav);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
    expect(webLocks()).toBeUndefined();
  });
});

describe('rebaseOutbox', () => {
  it('does not report a conflict when the server already holds the local value', () => {
    const base = docWith([['p_1', 'Same', 'open']]);
    const { conflicts, entries } = rebaseOutbox(base, [
      { seq: 1, ops: setField('p_1', 'title', 'Old', 'Same') },
    ]);
    expect(conflicts).toEqual([]);
    expect(entries).toHaveLength(1);
  });

  it('asks the onConflict hook of the table only, and keeps the default when it returns undefined', () => {
    const base = docWith([['p_1', 'Remote', 'open']]);
    const asked: string[] = [];
    const { conflicts } = rebaseOutbox(base, [{ seq: 1, ops: setField('p_1', 'title', 'Old', 'Local') }], {
      projects: (c) => {
        asked.push(`${c.table}/${c.key}/${c.field}:${String(c.local)}/${String(c.remote)}`);
        return undefined;
      },
      other: () => 'remote',
    });
    expect(asked).toEqual(['projects/p_1/title:Local/Remote']);
    expect(conflicts).toEqual([expect.objectContaining({ kind: 'field_changed', resolution: 'applied' })]);
  });

  it('keeps entries that create a table in their original form, with their rebased form for pushing', () => {
    const base = docWith([['r', 'R', 'open']]);
    const create = { seq: 1, ops: docCreate() };
    const { entries, rebased } = rebaseOutbox(base, [create, { seq: 2, ops: insert('l', 'L') }]);
    expect(entries[0]?.ops).toEqual(create.ops);
    expect(rebased[0]?.ops.map((o) => o.op)).toEqual(['remove', 'add']);
  });
});

function docCreate() {
  return [
    {
      op: 'add' as const,
      path: '/tables/projects',
      value: { schema: docWith().tables.projects?.schema ?? null, rows: {} } as never,
    },
  ];
}

describe("push sizes count UTF-8 bytes, as the store's cap does", () => {
  it('utf8Bytes agrees with the encoder on ASCII, 2-, 3- and 4-byte characters and lone surrogates', () => {
    for (const text of ['abc', 'é', '€uro', '😀', 'a\uD800b', '\uDC00', '日本語😀é']) {
      expect(utf8Bytes(text)).toBe(Buffer.byteLength(text, 'utf8'));
    }
  });

  it('a 413 halves the batch by UTF-8 bytes', async () => {
    const server = new FakeServer();
    server.write(docWith([]), false);
    const remote = new FakeRemote(server);
    const store = new MemoryStore();
    store.base = { doc: docWith([]), updatedAt: server.updatedAt };
    for (let i = 0; i < 4; i++) store.append(insert(`k_${i}`, '日本語'.repeat(100)));
    const entries = await store.readOutbox({});
    remote.failNext.push(new PayloadTooLargeError('too big'));
    const outcome = await pushOnce({ store, remote, maxBytes: 1 << 20 });
    const utf8 = entries.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e.ops), 'utf8'), 0);
    expect(bytesOf(entries)).toBe(utf8);
    expect(outcome).toEqual({ kind: 'shrink', maxBytes: Math.floor(bytesOf(entries) / 2) });
    expect(bytesOf(entries)).toBeGreaterThan(2.5 * JSON.stringify(entries.map((e) => e.ops)).length);
  });
});

describe('held entries', () => {
  it('dependents: later entries on the same rows or tables, transitively; others stay', () => {
    const root = { seq: 1, ops: insert('a', 'A') };
    const later = [
      { seq: 2, ops: setField('a', 'title', 'A', 'A2') }, // same row
      { seq: 3, ops: insert('b', 'B') }, // another row
      { seq: 4, ops: [...setField('a', 'status', 'open', 'x'), ...setField('c', 'title', 'C', 'C2')] },
      { seq: 5, ops: remove('c') }, // touches c, which entry 4 (a dependent) touched
      { seq: 6, ops: [{ op: 'remove' as const, path: '/tables/projects' }] }, // the whole table
      { seq: 7, ops: [{ op: 'remove' as const, path: '/tables/other' }] },
    ];
    expect(dependentsOf(root, later)).toEqual([2, 4, 5, 6]);
  });

  it('the stored reason reads back as the typed error, with waitsFor', () => {
    const r = parseHeldReason(heldReason(new PayloadTooLargeError('over the limit'), 3));
    expect(r.error).toBeInstanceOf(PayloadTooLargeError);
    expect(r.error.message).toBe('over the limit');
    expect(r.waitsFor).toBe(3);
    expect(parseHeldReason('not a keyed userdb path').error.code).toBe('storage');
  });
});

describe('error codes tell causes apart', () => {
  it('every error class has its own code', () => {
    const errors = [
      new AuthError('x'),
      new ForbiddenError('x'),
      new InvalidRemoteDocumentError('x'),
      new BadPatchError('x'),
      new PayloadTooLargeError('x'),
      new NetworkError('x'),
      new ServerError('x'),
      new StorageError('x'),
      new ConflictError('x', null),
    ];
    expect(new Set(errors.map((e) => e.code)).size).toBe(errors.length);
    expect(new ForbiddenError('x').code).toBe('forbidden');
    expect(new InvalidRemoteDocumentError('x').code).toBe('invalid_remote_document');
    expect(isTransient(new ForbiddenError('x'))).toBe(false);
    expect(isTransient(new AuthError('x'))).toBe(true);
  });
});
