/**
 * Indexes and incremental live results against a full re-evaluation without indexes: for random
 * documents, random index declarations, random queries (filters, orders, offsets, limits) and random
 * sequences of writes, discarded transactions, rebases (tolerant replays) and pulls (replaceAll),
 * every live result (rows by identity, and counts) and every indexed query equals the reference
 * evaluator (userdb's former scan-and-sort, test/core/reference-query.ts) on the same view.
 * Views are built in each way userdb builds them (declared indexes first, then the content; from
 * the keyed form; from the compact form, taken over by an empty view as at open), and indexes are
 * built on first use: the queries start before the steps, or only after some of them (an index
 * built late must see every change made before it, and follow every change after).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompactDoc,
  type Json,
  type KeyedDoc,
  type PatchOp,
  type Row,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';
import {
  ChangeSet,
  explainQuery,
  LiveCount,
  LiveResult,
  Overlay,
  type QuerySpec,
  type ReadLayer,
  runQuery,
  View,
} from '../../src/query/index.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  type Intent,
  intentArb,
  materialize,
  materializePatches,
  rowIntentArb,
} from '../unit/arbitraries.js';
import { referenceQuery } from './reference-query.js';

const params = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };

const OPS = ['==', '!=', '<', '<=', '>', '>=', 'in'] as const;
const FIELD_NAMES = ['id', 'title', '__proto__', 'constructor', 'a/b', '~f', 'n', 'v', 'hasOwnProperty'];

interface QueryIntent {
  table: number;
  where: { field: number; op: number; value: number; extra: number }[];
  orderBy: { field: number; desc: boolean }[];
  offset: number;
  limit: number | undefined;
}

const queryIntentArb: fc.Arbitrary<QueryIntent> = fc.record({
  table: fc.nat(),
  where: fc.array(fc.record({ field: fc.nat(), op: fc.nat(), value: fc.nat(), extra: fc.nat() }), {
    maxLength: 2,
  }),
  orderBy: fc.array(fc.record({ field: fc.nat(), desc: fc.boolean() }), { maxLength: 2 }),
  offset: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 3 })),
  limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
});

/**
 * Index declarations: for each table name, up to 3 indexes of 1–2 fields, chosen among the table's
 * fields when it exists (else among all field names: maybe missing or unindexable ones).
 */
const indexDefsArb = fc.array(
  fc.array(fc.uniqueArray(fc.nat({ max: 20 }), { minLength: 1, maxLength: 2 }), { maxLength: 3 }),
  { minLength: 7, maxLength: 7 },
);

const SCALARS = new Set(['string', 'number', 'integer', 'boolean', 'date', 'time', 'datetime']);

function indexesFor(view: View, table: string, choices: readonly (readonly number[])[]): string[][] {
  const schema = view.schemaOf(table);
  const scalar = schema?.fields.filter((f) => SCALARS.has(f.type)).map((f) => f.name) ?? [];
  const names = scalar.length > 0 ? scalar : FIELD_NAMES;
  return choices.map((c) => [...new Set(c.map((n) => pick(names, n) as string))]);
}

type Step =
  | { kind: 'write'; intents: Intent[] }
  | { kind: 'discard'; intents: Intent[] }
  | { kind: 'rebase'; intents: Intent[][] }
  | { kind: 'pull'; intents: Intent[]; reorder: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      intents: fc.array(intentArb, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('discard' as const),
      intents: fc.array(intentArb, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rebase' as const),
      intents: fc.array(fc.array(fc.oneof(rowIntentArb, intentArb), { minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 2,
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('pull' as const),
      intents: fc.array(fc.oneof(rowIntentArb, intentArb), { maxLength: 5 }),
      reorder: fc.boolean(),
    }),
  },
);

const TABLE_NAMES = ['projects', '__proto__', 'constructor', 'a/b', '~t', 'toString', ''];

function pick<T>(items: readonly T[], n: number): T | undefined {
  return items.length === 0 ? undefined : items[n % items.length];
}

/** A query for the current document: fields and values taken from the table (or made up). */
function queryFor(view: View, qi: QueryIntent): QuerySpec {
  const names = view.tableNames();
  const table = qi.table % 8 === 7 ? 'missing' : (pick(names, qi.table) ?? 'missing');
  const schema = view.schemaOf(table);
  const fields = schema?.fields.map((f) => f.name) ?? ['id'];
  // indexed fields more often, so that the planner has indexes to choose from
  const indexed = view.indexes(table).flatMap((ix) => ix.names);
  const fieldOf = (n: number): string =>
    (n % 3 !== 0 && indexed.length > 0 ? pick(indexed, n >> 2) : pick(fields, n)) as string;
  const rows = [...view.rows(table)];
  const cellValue = (field: string, n: number): Json => {
    if (n % 5 === 0 || rows.length === 0) return null;
    const row = rows[n % rows.length] as Row;
    return Object.hasOwn(row, field) ? (row[field] as Json) : null;
  };
  return {
    table,
    where: qi.where.map((w) => {
      const field = fieldOf(w.field);
      const op = OPS[w.op % OPS.length] as (typeof OPS)[number];
      const value =
        op === 'in'
          ? [cellValue(field, w.value), cellValue(field, w.extra)].slice(0, 1 + (w.extra % 2))
          : cellValue(field, w.value);
      return { field, op, value };
    }),
    orderBy: qi.orderBy.map((o) => ({ field: fieldOf(o.field), dir: o.desc ? 'desc' : 'asc' })),
    offset: qi.offset,
    limit: qi.limit,
  };
}

/** The view read through the plain ReadLayer methods only (no indexes, no positions). */
function plain(layer: ReadLayer): ReadLayer {
  return {
    tableNames: () => layer.tableNames(),
    schemaOf: (t) => layer.schemaOf(t),
    getRow: (t, k) => layer.getRow(t, k),
    rows: (t) => layer.rows(t),
    entries: (t) => layer.entries(t),
    size: (t) => layer.size(t),
  };
}

type Outcome = { rows: Row[] } | { error: string };

function outcome(fn: () => Row[]): Outcome {
  try {
    return { rows: fn() };
  } catch (e) {
    return { error: e instanceof Error ? e.constructor.name : String(e) };
  }
}

function expectSameRows(actual: readonly Row[], expected: readonly Row[]): void {
  expect(actual.length).toBe(expected.length);
  // the same row objects, in the same order
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBe(expected[i]);
}

interface Live {
  spec: QuerySpec;
  rows: LiveResult;
  count: LiveCount;
}

function fresh(doc: KeyedDoc): KeyedDoc {
  return toKeyed(toCompact(doc) as CompactDoc);
}

/** The same document with the rows of every table in reverse order. */
function reversed(doc: KeyedDoc): KeyedDoc {
  const out: KeyedDoc = { version: 1, tables: {} };
  for (const name of Object.keys(doc.tables)) {
    const t = doc.tables[name] as KeyedDoc['tables'][string];
    const rows: Record<string, Row> = {};
    for (const key of Object.keys(t.rows).reverse()) {
      Object.defineProperty(rows, key, {
        value: t.rows[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    Object.defineProperty(out.tables, name, {
      value: { schema: t.schema, rows },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

describe('indexed queries and incremental live results equal a full re-evaluation', () => {
  it(
    'under random writes, discarded transactions, rebases and pulls',
    () => {
      fc.assert(
        fc.property(
          docArb,
          indexDefsArb,
          fc.constantFrom('indexFirst', 'fromKeyed', 'fromCompact'),
          fc.array(queryIntentArb, { minLength: 1, maxLength: 5 }),
          fc.array(stepArb, { minLength: 1, maxLength: 6 }),
          fc.nat({ max: 3 }),
          (doc, indexDefs, build, queryIntents, allSteps, late) => {
            const defs = (() => {
              const probe = View.fromKeyed(toKeyed(doc));
              return TABLE_NAMES.map((name, i) => indexesFor(probe, name, indexDefs[i] ?? []));
            })();
            const declare = (view: View) =>
              TABLE_NAMES.forEach((name, i) => {
                view.setIndexes(name, defs[i] ?? []);
              });
            let view: View;
            if (build === 'indexFirst') {
              view = new View();
              declare(view);
              view.replaceAll(toKeyed(doc));
            } else if (build === 'fromKeyed') {
              view = View.fromKeyed(toKeyed(doc));
              declare(view);
            } else {
              // as at open: an empty view with declared indexes takes over one built from the base
              view = new View();
              declare(view);
              view.replaceWith(View.fromCompact(doc));
            }
            for (const name of TABLE_NAMES)
              for (const index of view.indexes(name)) expect(index.built).toBe(false);
            const live: Live[] = [];
            // the same content as the view (not read from it: a view read from the compact base
            // makes its rows only when they are read)
            let older = toKeyed(doc);
            const check = (layer: ReadLayer) => {
              for (const l of live) {
                const expected = outcome(() => referenceQuery(plain(layer), l.spec));
                const indexed = outcome(() => runQuery(layer, l.spec));
                expect('error' in indexed).toBe('error' in expected);
                if ('rows' in indexed && 'rows' in expected) {
                  expectSameRows(indexed.rows, expected.rows);
                  const { explain } = explainQuery(layer, l.spec);
                  expect(explain.rows).toBe(expected.rows.length);
                  if (explain.via === 'scan')
                    expect(explain.touched).toBeLessThanOrEqual(layer.size(l.spec.table));
                }
              }
            };
            const runStep = (step: (typeof allSteps)[number], changes?: ChangeSet): void => {
              if (step.kind === 'write') {
                const { ops } = materialize(view.toKeyed(), step.intents);
                view.apply(ops, new Set(), changes);
              } else if (step.kind === 'discard') {
                // a transaction that is rolled back: reads inside it see its writes, the view never does
                const tx = new Overlay(view);
                const { ops } = materialize(view.toKeyed(), step.intents);
                for (const op of ops) tx.apply(op);
                check(tx);
                tx.rollback(0);
              } else if (step.kind === 'rebase') {
                // local patches made on an older state, replayed tolerantly on the current one
                const { patches } = materializePatches(older, step.intents);
                for (const p of patches) view.replay(p as PatchOp[], changes);
              } else {
                const { doc: next } = materialize(view.toKeyed(), step.intents);
                view.replaceAll(step.reorder ? reversed(fresh(next)) : fresh(next), changes);
              }
            };
            // steps before any query: the indexes are built later, from the rows of that time
            const early = allSteps.slice(0, Math.min(late, allSteps.length - 1));
            const steps = allSteps.slice(early.length);
            for (const step of early) {
              runStep(step);
              older = step.kind === 'pull' ? older : view.toKeyed();
            }
            for (const qi of queryIntents) {
              const spec = queryFor(view, qi);
              const rows = new LiveResult(view, spec);
              const count = new LiveCount(view, spec);
              // first (the reference reads every row: an index built after it would only see made rows)
              const got = outcome(() => {
                rows.reset();
                count.reset();
                return rows.rows();
              });
              const expected = outcome(() => referenceQuery(plain(view), spec));
              if ('error' in expected) {
                expect(got).toEqual(expected);
                continue;
              }
              expectSameRows((got as { rows: Row[] }).rows, expected.rows);
              expect(count.value()).toBe(expected.rows.length);
              live.push({ spec, rows, count });
            }
            for (const step of steps) {
              const changes = new ChangeSet();
              runStep(step, changes);
              older = step.kind === 'pull' ? older : view.toKeyed();
              for (let i = live.length - 1; i >= 0; i--) {
                const l = live[i] as Live;
                const expected = outcome(() => referenceQuery(plain(view), l.spec));
                const got = outcome(() => {
                  l.rows.update(changes.get(l.spec.table));
                  l.count.update(changes.get(l.spec.table));
                  return l.rows.rows();
                });
                if ('error' in expected || 'error' in got) {
                  // a live query whose evaluation fails stops (its observable errors)
                  expect('error' in got).toBe('error' in expected);
                  live.splice(i, 1);
                  continue;
                }
                expectSameRows(got.rows, expected.rows);
                expect(l.count.value()).toBe(expected.rows.length);
              }
              check(view);
            }
          },
        ),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );
});
