/**
 * The write path keeps the base generation in memory instead of reading it with every outbox insert.
 * These tests cover what that must not break: another tab (another connection to the same IndexedDB,
 * whose change notification arrives later, as a BroadcastChannel message does) changing the base
 * right before a write of this tab.
 */
import { Dexie, type ObservabilitySet } from 'dexie';
import { afterEach, describe, expect, it } from 'vitest';
import { localStore } from '../../src/api/internal.js';
import { applyCompact, compile } from '../../src/doc/index.js';
import type { UserDb } from '../../src/index.js';
import { LocalStore } from '../../src/store/local-store.js';
import { freshEnv, openTyped, project, type TestSchema } from './helpers.js';

const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

/** Runs `fn` as another tab would: its change notifications reach `db` only when `deliver` is called. */
async function asAnotherTab(db: UserDb<TestSchema>, fn: () => Promise<void>): Promise<() => void> {
  const store = localStore(db as unknown as UserDb);
  const listener = (store as unknown as { onStorageMutated: (parts: ObservabilitySet) => void })
    .onStorageMutated;
  const held: ObservabilitySet[] = [];
  const hold = (parts: ObservabilitySet) => {
    held.push(structuredClone(parts)); // what a BroadcastChannel delivers: a copy
  };
  Dexie.on.storagemutated.unsubscribe(listener);
  Dexie.on('storagemutated', hold);
  try {
    await fn();
  } finally {
    Dexie.on.storagemutated.unsubscribe(hold);
  }
  return () => {
    Dexie.on('storagemutated', listener);
    for (const parts of held) listener(parts);
  };
}

/** A fresh IndexedDB holding a stored (empty) base, as after a first pull. */
async function seeded() {
  const env = freshEnv();
  const store = await LocalStore.open(env);
  await store.replaceBase({ version: 1, tables: {} }, null);
  store.close();
  return env;
}

/** Resolves once `db` has run everything queued before (its catch-up included). */
async function settled(db: UserDb<TestSchema>): Promise<void> {
  await new Promise((r) => setTimeout(r, 0));
  await db.transaction(async () => {});
}

describe('write path: another tab changes the base just before a write', () => {
  it('the view ends as base + outbox when the change is announced after the write', async () => {
    const env = await seeded();
    const a = await openTyped(env);
    opened.push(a);
    await a.table('projects').insert(project('p1')); // the generation is known from here on
    const other = await LocalStore.open(env);
    opened.push(other);
    const deliver = await asAnotherTab(a, async () => {
      // the other tab pushed this tab's rows, then received a remote change of p1
      const { entries, base } = await other.load();
      const acked = entries.at(-1)?.seq ?? 0;
      const pushed = compile(
        entries.flatMap((e) => e.ops),
        base.doc,
      );
      const remote = [{ op: 'replace' as const, path: '/tables/projects/rows/p1/title', value: 'remote' }];
      await other.appendLog({
        dropUpToSeq: acked,
        changes: [
          {
            before: base.updatedAt,
            after: '2026-01-01T00:00:01.000000+00:00',
            ops: pushed,
            keyed: null,
            clientId: other.clientId,
            batchSeq: 1,
            acked,
            exact: true,
          },
          {
            before: '2026-01-01T00:00:01.000000+00:00',
            after: '2026-01-01T00:00:02.000000+00:00',
            ops: compile(remote, applyCompact(base.doc, pushed)),
            keyed: remote,
            clientId: null,
            batchSeq: null,
            acked: null,
            exact: false,
          },
        ],
      });
    });
    // this tab has not heard of it yet: it writes on the generation it knows
    await a.table('projects').insert(project('p2'));
    await a.table('projects').update('p1', { title: 'mine' });
    deliver();
    await settled(a);
    // a fresh instance reads base + outbox: the truth
    const fresh = await openTyped(env);
    opened.push(fresh);
    expect(await a.export()).toEqual(await fresh.export());
    expect((await a.table('projects').get('p1'))?.title).toBe('mine');
  });

  it('a change announced before the write is read with the write (no rebuild needed)', async () => {
    const env = await seeded();
    const a = await openTyped(env);
    opened.push(a);
    await a.table('projects').insert(project('p1'));
    const other = await LocalStore.open(env);
    opened.push(other);
    const { base, entries } = await other.load();
    const acked = entries.at(-1)?.seq ?? 0;
    // announced at once (another connection in this process): counted as a foreign change
    await other.appendLog({
      dropUpToSeq: acked,
      changes: [
        {
          before: base.updatedAt,
          after: '2026-01-01T00:00:01.000000+00:00',
          ops: compile(
            entries.flatMap((e) => e.ops),
            base.doc,
          ),
          keyed: null,
          clientId: other.clientId,
          batchSeq: 1,
          acked,
          exact: true,
        },
      ],
    });
    await settled(a);
    const result = await localStore(a as unknown as UserDb).append([
      { op: 'replace', path: '/tables/projects/rows/p1/title', value: 'x' },
    ]);
    expect(result.generationChecked).toBe(true);
    expect(result.generation).toBe(base.generation + 1);
    const next = await localStore(a as unknown as UserDb).append([
      { op: 'replace', path: '/tables/projects/rows/p1/title', value: 'y' },
    ]);
    expect(next.generationChecked).toBe(false);
    expect(next.previousSeq).toBe(result.seq);
  });

  it('a change of this connection still queued when an append starts is read by the append', async () => {
    const env = await seeded();
    const store = await LocalStore.open(env);
    opened.push(store);
    const { base } = await store.load();
    const table = { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, rows: [] };
    const first = await store.append([{ op: 'add', path: '/tables/t', value: table }]);
    expect(first.generationChecked).toBe(true);
    // not awaited: the append below is created while this transaction is still pending
    const logged = store.appendLog({
      dropUpToSeq: first.seq,
      changes: [
        {
          before: base.updatedAt,
          after: '2026-01-01T00:00:01.000000+00:00',
          ops: [{ op: 'add', path: '/tables/t', value: table }],
          keyed: null,
          clientId: store.clientId,
          batchSeq: 1,
          acked: first.seq,
          exact: true,
        },
      ],
    });
    const next = await store.append([{ op: 'add', path: '/tables/t/rows/a', value: { id: 'a' } }]);
    await logged;
    expect(next.generation).toBe(base.generation + 1);
    expect(next.generationChecked).toBe(true);
    expect(next.previousSeq).toBe(first.seq);
  });
});
