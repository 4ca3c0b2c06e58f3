/**
 * Live queries of a database with declared indexes, end to end (fake-indexeddb): for random
 * sequences of inserts, updates, deletes, transactions (committed, rolled back, with a failing
 * savepoint) and pulls (a new base stored, the pending outbox rebased on it), every live query's
 * latest emission equals the former scan-and-sort evaluator on the committed state (row objects
 * by identity), a query emits exactly when that result changed (once per commit), and live counts
 * follow.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { localStore, rebuildView } from '../../src/api/internal.js';
import type { CompactDoc, Json, Row } from '../../src/doc/index.js';
import { createUserDb, defineSchema, type UserDb } from '../../src/index.js';
import type { QuerySpec, ReadLayer, View } from '../../src/query/index.js';
import { FUZZ_SEED } from '../unit/arbitraries.js';
import { freshEnv } from './helpers.js';
import { referenceQuery, sameRows } from './reference-query.js';

const RUNS = Math.max(10, Math.floor(Number(process.env.FUZZ_RUNS ?? 200) / 8));

const schema = defineSchema({
  tasks: {
    fields: {
      id: z.string(),
      status: z.enum(['a', 'b', 'c']),
      rank: z.int(),
      due: z.iso.datetime({ offset: true }).nullable(),
    },
    primaryKey: ['id'],
    indexes: ['status', ['status', 'rank'], 'due'],
  },
});

const IDS = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'];
const DUES = [null, '2026-01-01T00:00:00Z', '2026-01-01T01:00:00+01:00', '2026-03-01T00:00:00.5Z'];

const statusArb = fc.constantFrom('a' as const, 'b' as const, 'c' as const);
const rowArb = fc.record({
  id: fc.constantFrom(...IDS),
  status: statusArb,
  rank: fc.integer({ min: 0, max: 3 }),
  due: fc.constantFrom(...DUES),
});

type Write =
  | { kind: 'insert'; row: { id: string; status: 'a' | 'b' | 'c'; rank: number; due: string | null } }
  | { kind: 'update'; id: string; status?: 'a' | 'b' | 'c'; rank?: number }
  | { kind: 'delete'; id: string };

const writeArb: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), row: rowArb }),
  fc.record(
    {
      kind: fc.constant('update' as const),
      id: fc.constantFrom(...IDS),
      status: statusArb,
      rank: fc.integer({ min: 0, max: 3 }),
    },
    { requiredKeys: ['kind', 'id'] },
  ),
  fc.record({ kind: fc.constant('delete' as const), id: fc.constantFrom(...IDS) }),
);

type Action =
  | { kind: 'write'; write: Write }
  | { kind: 'tx'; writes: Write[]; fail: boolean; savepoint: Write[] }
  | { kind: 'pull'; drop: number; bump: number; reverse: boolean; pushFirst: boolean };

const stamp = (n: number): string => `2026-01-01T00:00:00.${String(n).padStart(6, '0')}+00:00`;

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), write: writeArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('tx' as const),
      writes: fc.array(writeArb, { maxLength: 4 }),
      fail: fc.boolean(),
      savepoint: fc.array(writeArb, { maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pull' as const),
      drop: fc.nat(),
      bump: fc.nat(),
      reverse: fc.boolean(),
      pushFirst: fc.boolean(),
    }),
  },
);

const specArb: fc.Arbitrary<QuerySpec> = fc.record({
  table: fc.constant('tasks'),
  where: fc.array(
    fc.oneof(
      fc.record({
        field: fc.constant('status'),
        op: fc.constant('==' as const),
        value: statusArb as fc.Arbitrary<unknown>,
      }),
      fc.record({
        field: fc.constant('status'),
        op: fc.constant('in' as const),
        value: fc.uniqueArray(statusArb, { maxLength: 2 }) as fc.Arbitrary<unknown>,
      }),
      fc.record({
        field: fc.constant('rank'),
        op: fc.constantFrom('<' as const, '>=' as const, '!=' as const),
        value: fc.integer({ min: 0, max: 3 }) as fc.Arbitrary<unknown>,
      }),
      fc.record({
        field: fc.constant('due'),
        op: fc.constantFrom('<=' as const, '==' as const, '>' as const),
        value: fc.constantFrom(...DUES) as fc.Arbitrary<unknown>,
      }),
    ),
    { maxLength: 2 },
  ),
  orderBy: fc.oneof(
    fc.constant([]),
    fc.constant([{ field: 'rank', dir: 'desc' as const }]),
    fc.constant([{ field: 'due', dir: 'asc' as const }]),
    fc.constant([
      { field: 'status', dir: 'asc' as const },
      { field: 'rank', dir: 'asc' as const },
    ]),
  ),
  offset: fc.constantFrom(0, 0, 1),
  limit: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
});

type Db = UserDb<typeof schema.definition>;

async function runWrite(db: Db, w: Write): Promise<void> {
  const tasks = db.table('tasks');
  try {
    if (w.kind === 'insert') await tasks.insert(w.row);
    else if (w.kind === 'update') {
      const changes: { status?: 'a' | 'b' | 'c'; rank?: number } = {};
      if (w.status !== undefined) changes.status = w.status;
      if (w.rank !== undefined) changes.rank = w.rank;
      await tasks.update(w.id, changes);
    } else await tasks.delete(w.id);
  } catch (e) {
    // a duplicate insert or an update of a missing row changes nothing
    if (
      !(e instanceof Error) ||
      !['duplicate_key', 'not_found'].includes((e as { code?: string }).code ?? '')
    )
      throw e;
  }
}

function plain(view: View): ReadLayer {
  return {
    tableNames: () => view.tableNames(),
    schemaOf: (t) => view.schemaOf(t),
    getRow: (t, k) => view.getRow(t, k),
    rows: (t) => view.rows(t),
    entries: (t) => view.entries(t),
    size: (t) => view.size(t),
  };
}

describe('live queries on indexed tables emit exactly the re-evaluated result, once per change', () => {
  it('under random writes, transactions, rollbacks and pulls with pending edits', async () => {
    let token = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(specArb, { minLength: 1, maxLength: 4 }),
        fc.array(actionArb, { minLength: 1, maxLength: 12 }),
        async (specs, actions) => {
          const db = await createUserDb({ ...freshEnv(), schema });
          const view = (db as unknown as { view: View }).view;
          try {
            const subs = specs.map((spec) => {
              let q = db.table('tasks').query();
              for (const c of spec.where) q = q.where(c.field as 'status', c.op as '==', c.value as 'a');
              for (const o of spec.orderBy) q = q.orderBy(o.field as 'rank', o.dir);
              if (spec.offset > 0) q = q.offset(spec.offset);
              if (spec.limit !== undefined) q = q.limit(spec.limit);
              const emitted: Row[][] = [];
              const counts: number[] = [];
              const s1 = q.observe().subscribe((rows) => emitted.push(rows as Row[]));
              const s2 = q.observeCount().subscribe((n) => counts.push(n));
              return {
                spec,
                emitted,
                counts,
                expected: 1,
                last: referenceQuery(plain(view), spec),
                stop: () => {
                  s1.unsubscribe();
                  s2.unsubscribe();
                },
              };
            });
            for (const action of actions) {
              if (action.kind === 'write') await runWrite(db, action.write);
              else if (action.kind === 'tx') {
                await db
                  .transaction(async () => {
                    for (const w of action.writes) await runWrite(db, w);
                    await db
                      .transaction(async () => {
                        for (const w of action.savepoint) await runWrite(db, w);
                        throw new Error('savepoint undone');
                      })
                      .catch(() => undefined);
                    if (action.fail) throw new Error('rolled back');
                  })
                  .catch((e: unknown) => {
                    if (!(e instanceof Error) || e.message !== 'rolled back') throw e;
                  });
              } else {
                // a pull: the server's document (local state with a row dropped, one changed, maybe
                // in another order) becomes the base; pending local edits are rebased on it
                const doc = (await db.export()) as CompactDoc;
                const table = doc.tables.tasks as { rows: Json[][] };
                if (table.rows.length > 0) table.rows.splice(action.drop % table.rows.length, 1);
                const bumped = table.rows[action.bump % Math.max(1, table.rows.length)];
                if (bumped !== undefined) bumped[2] = ((bumped[2] as number) + 1) % 4;
                if (action.reverse) table.rows.reverse();
                token++;
                const store = localStore(db as unknown as UserDb);
                if (action.pushFirst) {
                  // the edits so far reached the server (as a push stores them), so the pull's
                  // changes are not masked by replaying them
                  const { last } = await store.outboxBounds();
                  const pushed = await db.export();
                  await store.commitPush({
                    newBase: pushed,
                    updatedAt: stamp(token),
                    upToSeq: last,
                    exact: true,
                  });
                  token++;
                }
                await store.replaceBase(doc, stamp(token));
                await rebuildView(db as unknown as UserDb);
              }
              for (const s of subs) {
                const now = referenceQuery(plain(view), s.spec);
                if (!sameRows(now, s.last)) s.expected++;
                s.last = now;
                expect(s.emitted.length).toBe(s.expected);
                const latest = s.emitted.at(-1) as Row[];
                expect(latest.length).toBe(now.length);
                for (let i = 0; i < now.length; i++) expect(latest[i]).toBe(now[i]);
                expect(s.counts.at(-1)).toBe(now.length);
              }
            }
            for (const s of subs) s.stop();
          } finally {
            await db.close();
          }
        },
      ),
      { numRuns: RUNS, seed: FUZZ_SEED },
    );
  }, 600_000);
});
