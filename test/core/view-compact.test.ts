/**
 * Start-up builds the view straight from the compact base (`View.fromCompact`) and an empty view
 * takes it over (`replaceWith`): the result must be exactly the view the keyed form gives (same
 * tables, rows, row order — array-index keys first, as a plain object lists them — and positions),
 * with rows made once (one object per row, deeply frozen), and declared indexes built only when a
 * query can use them.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { type CompactDoc, type Json, type PatchOp, type Row, toKeyed } from '../../src/doc/index.js';
import {
  ChangeSet,
  explainQuery,
  INDEXABLE_TYPES,
  type QuerySpec,
  runQuery,
  View,
} from '../../src/query/index.js';
import { compareSortValues, type Entry, SortedIndex } from '../../src/query/indexes.js';
import { docArb, FUZZ_RUNS, FUZZ_SEED } from '../unit/arbitraries.js';

const params = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };

/** Everything a reader can see of a view, in order. */
function snapshot(view: View) {
  return view.tableNames().map((name) => ({
    name,
    schema: view.schemaOf(name),
    size: view.size(name),
    entries: [...view.entryList(name)].map((e) => ({ key: e.key, ord: e.ord, row: e.row })),
  }));
}

function isDeepFrozen(value: Json): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (!Object.isFrozen(value)) return false;
  return Object.values(value).every((v) => isDeepFrozen(v as Json));
}

const doc: CompactDoc = {
  version: 1,
  tables: {
    tasks: {
      schema: {
        fields: [
          { name: 'id', type: 'integer' },
          { name: '__proto__', type: 'string' },
          { name: 'status', type: 'string' },
          { name: 'meta', type: 'object' },
          { name: 'tags', type: 'array' },
        ],
        primaryKey: ['id'],
      },
      // integer keys: a plain object lists 0, 2, 10 first (numeric order), then -1 and 4294967295
      rows: [
        [10, 'x', 'open', { a: [1] }, ['t']],
        [-1, 'y', 'closed', null, []],
        [2, 'z', 'open', null, ['u']],
        [4294967295, 'w', 'review', { b: 1 }, []],
        [0, 'v', 'closed', null, []],
      ],
    },
    pairs: {
      schema: {
        fields: [
          { name: 'a', type: 'string' },
          { name: 'b', type: 'integer' },
        ],
        primaryKey: ['a', 'b'],
      },
      rows: [
        ['x', 2],
        ['x', 1],
      ],
    },
  },
};

describe('View.fromCompact', () => {
  it('equals the view of the keyed form: tables, rows, row order and positions', () => {
    const compact = View.fromCompact(structuredClone(doc));
    const keyed = View.fromKeyed(toKeyed(structuredClone(doc)));
    expect(snapshot(compact)).toEqual(snapshot(keyed));
    expect([...compact.entryList('tasks')].map((e) => e.key)).toEqual(['0', '2', '10', '-1', '4294967295']);
    const row = compact.getRow('tasks', '10') as Row;
    expect(Object.hasOwn(row, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
  });

  it('equals the view of the keyed form for random documents', () => {
    fc.assert(
      fc.property(docArb, (d) => {
        expect(snapshot(View.fromCompact(structuredClone(d)))).toEqual(
          snapshot(View.fromKeyed(toKeyed(structuredClone(d)))),
        );
      }),
      params,
    );
  });

  it('makes each row once, deeply frozen, and keeps it through updates of other rows', () => {
    const view = View.fromCompact(structuredClone(doc));
    const first = view.getRow('tasks', '10') as Row;
    expect(view.getRow('tasks', '10')).toBe(first);
    expect([...view.rows('tasks')][2]).toBe(first);
    expect(isDeepFrozen(first as Json)).toBe(true);
    for (const r of view.rows('tasks')) expect(isDeepFrozen(r as Json)).toBe(true);
    const changes = new ChangeSet();
    view.apply([{ op: 'replace', path: '/tables/tasks/rows/2/status', value: 'closed' }], new Set(), changes);
    expect(view.getRow('tasks', '10')).toBe(first);
    expect(view.getRow('tasks', '2')?.status).toBe('closed');
    expect(changes.get('tasks')).not.toBe('all');
  });
});

describe('indexes of a view read from the compact base', () => {
  it('order the rows exactly as on a view of the keyed form, built before any row is made', () => {
    fc.assert(
      fc.property(docArb, (d) => {
        const compact = View.fromCompact(structuredClone(d));
        const keyed = View.fromKeyed(toKeyed(structuredClone(d)));
        for (const name of compact.tableNames()) {
          const fields = (compact.schemaOf(name)?.fields ?? [])
            .filter((f) => INDEXABLE_TYPES.has(f.type))
            .map((f) => f.name);
          const defs = [...fields.map((f) => [f]), fields];
          compact.setIndexes(name, defs);
          keyed.setIndexes(name, defs);
          const order = (index: SortedIndex) => Array.from({ length: index.size }, (_, i) => index.at(i).key);
          expect(compact.indexes(name).map(order)).toEqual(keyed.indexes(name).map(order));
        }
      }),
      params,
    );
  });
});

describe('View.replaceWith', () => {
  it('takes the tables of another view over when empty, each table changed as a whole', () => {
    const built = View.fromCompact(structuredClone(doc));
    const row = built.getRow('tasks', '0');
    const view = new View();
    view.setIndexes('tasks', [['status']]);
    const changes = new ChangeSet();
    expect(view.replaceWith(built, changes)).toEqual(new Set(['tasks', 'pairs']));
    expect(changes.get('tasks')).toBe('all');
    expect(changes.get('pairs')).toBe('all');
    expect(view.getRow('tasks', '0')).toBe(row);
    expect(view.indexes('tasks').map((i) => i.names)).toEqual([['status']]);
  });

  it('keeps the identity of unchanged rows when the view is not empty (as replaceAll)', () => {
    const view = View.fromCompact(structuredClone(doc));
    const kept = view.getRow('tasks', '0');
    const next = structuredClone(doc);
    ((next.tables.tasks as { rows: Json[][] }).rows[1] as Json[])[2] = 'open';
    const changes = new ChangeSet();
    expect(view.replaceWith(View.fromCompact(next), changes)).toEqual(new Set(['tasks']));
    expect(view.getRow('tasks', '0')).toBe(kept);
    expect(view.getRow('tasks', '-1')?.status).toBe('open');
    expect((changes.get('tasks') as Map<string, unknown>).size).toBe(1);
  });
});

/** A query of `tasks`. */
function spec(over: Partial<QuerySpec>): QuerySpec {
  return { table: 'tasks', where: [], orderBy: [], offset: 0, limit: undefined, ...over };
}

describe('declared indexes are built on first use', () => {
  const statusOpen = spec({ where: [{ field: 'status', op: '==', value: 'open' }] });

  it('a query the index cannot help leaves it unbuilt; one it helps builds it', () => {
    const view = new View();
    view.setIndexes('tasks', [['status'], ['id']]);
    view.replaceWith(View.fromCompact(structuredClone(doc)));
    const [status, id] = view.indexes('tasks');
    expect(status?.built).toBe(false);
    expect(id?.built).toBe(false);
    expect(runQuery(view, spec({ limit: 2 }))).toHaveLength(2);
    expect(runQuery(view, spec({ where: [{ field: 'meta', op: '==', value: null }] }))).toHaveLength(3);
    expect(status?.built).toBe(false);
    expect(id?.built).toBe(false);
    expect(explainQuery(view, statusOpen).explain).toEqual({
      via: 'index',
      index: ['status'],
      touched: 2,
      rows: 2,
    });
    expect(status?.built).toBe(true);
    expect(id?.built).toBe(false);
  });

  it('an index built after writes sees them, and is maintained under the writes after it', () => {
    const view = new View();
    view.setIndexes('tasks', [['status']]);
    view.replaceWith(View.fromCompact(structuredClone(doc)));
    const ops: PatchOp[] = [
      { op: 'replace', path: '/tables/tasks/rows/-1/status', value: 'open' },
      { op: 'remove', path: '/tables/tasks/rows/10' },
      { op: 'add', path: '/tables/tasks/rows/7', value: { id: 7, status: 'open', tags: [] } },
    ];
    view.apply(ops); // before the index is built
    const keys = () => runQuery(view, statusOpen).map((r) => r.id);
    expect(view.indexes('tasks')[0]?.built).toBe(false);
    expect(keys()).toEqual([2, -1, 7]);
    expect(view.indexes('tasks')[0]?.built).toBe(true);
    // after: a local write, a tolerant replay (rebase), a remote change through the same op path
    view.apply([{ op: 'replace', path: '/tables/tasks/rows/0/status', value: 'open' }]);
    view.replay([{ op: 'remove', path: '/tables/tasks/rows/2' }]);
    view.apply([{ op: 'replace', path: '/tables/tasks/rows/7/status', value: 'closed' }]);
    expect(keys()).toEqual([0, -1]);
    expect(explainQuery(view, statusOpen).explain).toEqual({
      via: 'index',
      index: ['status'],
      touched: 2,
      rows: 2,
    });
  });
});

describe('SortedIndex.build', () => {
  const TYPES = ['string', 'integer', 'number', 'boolean', 'datetime'] as const;
  const cellValue = (type: (typeof TYPES)[number], i: number): Json => {
    if (i % 7 === 6) return null;
    switch (type) {
      case 'string':
        return `s${i % 3}${'x'.repeat(i % 4)}`;
      case 'integer':
        return i - 5;
      case 'number':
        return (i - 5) / 4;
      case 'boolean':
        return i % 2 === 0;
      default:
        // the same instants written with two offsets: equal after normalising
        return i % 2 === 0
          ? new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString()
          : new Date(Date.UTC(2026, 0, 1, 1, i)).toISOString().replace('Z', '+01:00').replace(/T01/, 'T02');
    }
  };

  /** The reference: sort by the normalized values (null first, then by kind), then by `ord`. */
  function referenceOrder(index: SortedIndex, entries: readonly Entry[]): string[] {
    return entries
      .map((e) => ({ e, vals: index.valuesOf(e.row) }))
      .sort((a, b) => {
        for (let i = 0; i < a.vals.length; i++) {
          const d = compareSortValues(a.vals[i] as Json, b.vals[i] as Json);
          if (d !== 0) return d;
        }
        return a.e.ord - b.e.ord;
      })
      .map((x) => x.e.key);
  }

  const caseArb = fc.record({
    types: fc.array(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 7 }),
    // per field: how many distinct values it draws from (few: counted; many: compared)
    spread: fc.array(fc.constantFrom(2, 5, 40, 100_000), { minLength: 7, maxLength: 7 }),
    seeds: fc.array(fc.array(fc.nat(), { minLength: 7, maxLength: 7 }), { maxLength: 300 }),
    shuffled: fc.boolean(),
  });

  it('orders by the values, then table order, whichever way it sorts (counting, numbers, values)', () => {
    const byValues = vi.spyOn(
      SortedIndex.prototype as unknown as { buildByValues: () => void },
      'buildByValues',
    );
    let paths = 0;
    fc.assert(
      fc.property(caseArb, ({ types, spread, seeds, shuffled }) => {
        const fields = types.map((type, k) => ({ name: `f${k}`, type }));
        const entries: Entry[] = seeds.map((seed, i) => {
          const row: Row = {};
          fields.forEach((f, k) => {
            row[f.name] = cellValue(f.type, (seed[k] as number) % (spread[k] as number));
          });
          return { key: `k${i}`, row, ord: i };
        });
        const input = shuffled ? [...entries].reverse() : entries;
        const index = new SortedIndex(fields);
        index.build(input);
        const got = Array.from({ length: index.size }, (_, i) => index.at(i).key);
        expect(got).toEqual(referenceOrder(index, entries));
        // and built lazily from the same entries
        const lazy = SortedIndex.lazy(fields, () => input);
        expect(lazy.built).toBe(false);
        expect(Array.from({ length: lazy.size }, (_, i) => lazy.at(i).key)).toEqual(got);
        expect(lazy.built).toBe(true);
        paths++;
      }),
      { ...params, numRuns: Math.max(100, FUZZ_RUNS) },
    );
    // a 7-field index of many distinct values has too many keys to number: sorted by values
    const fields = TYPES.map((type, k) => ({ name: `f${k}`, type: type === 'boolean' ? 'integer' : type }));
    const wide = [
      ...fields,
      { name: 'f5', type: 'integer' as const },
      { name: 'f6', type: 'number' as const },
    ];
    const entries: Entry[] = Array.from({ length: 600 }, (_, i) => {
      const row: Row = {};
      wide.forEach((f, k) => {
        row[f.name] = cellValue(f.type, (i * ([7, 11, 13, 17, 19, 23, 29][k] as number)) % 600);
      });
      return { key: `k${i}`, row, ord: i };
    });
    byValues.mockClear();
    const index = new SortedIndex(wide);
    index.build(entries);
    expect(byValues).toHaveBeenCalledTimes(1);
    expect(Array.from({ length: index.size }, (_, i) => index.at(i).key)).toEqual(
      referenceOrder(index, entries),
    );
    expect(paths).toBeGreaterThan(0);
    byValues.mockRestore();
  });
});

describe('a table whose rows come in table order is keyed on its first lookup by key', () => {
  const notes: CompactDoc = {
    version: 1,
    tables: {
      // integer keys in increasing order: already the keyed form's order
      notes: {
        schema: {
          fields: [
            { name: 'id', type: 'integer' },
            { name: 'status', type: 'string' },
          ],
          primaryKey: ['id'],
        },
        rows: [
          [1, 'open'],
          [2, 'closed'],
          [5, 'open'],
          [9, 'closed'],
        ],
      },
      // string keys: table order is array order
      tags: {
        schema: { fields: [{ name: 'name', type: 'string' }], primaryKey: ['name'] },
        rows: [['zeta'], ['alpha'], ['mid']],
      },
    },
  };

  it('scans, counts, limited queries and index builds key no row; a lookup keys the table, keeping every entry made', () => {
    const view = new View();
    view.setIndexes('notes', [['status']]);
    view.replaceWith(View.fromCompact(structuredClone(notes)));
    expect(snapshot(view)).toEqual(snapshot(View.fromKeyed(toKeyed(structuredClone(notes)))));
    const scanned = [...view.entryList('notes')];
    expect(view.size('notes')).toBe(4);
    expect(runQuery(view, { ...spec({ limit: 2 }), table: 'notes' }).map((r) => r.id)).toEqual([1, 2]);
    expect(
      explainQuery(view, {
        ...spec({ where: [{ field: 'status', op: '==', value: 'open' }] }),
        table: 'notes',
      }).explain.via,
    ).toBe('index');
    expect([...view.entries('tags')].map(([k]) => k)).toEqual(['zeta', 'alpha', 'mid']);
    expect(view.isKeyed('notes')).toBe(false);
    expect(view.isKeyed('tags')).toBe(false);
    // the first lookup by key: the entries (and rows) made by the scans are the keyed ones
    expect(view.getRow('notes', '5')).toBe(scanned[2]?.row);
    expect(view.isKeyed('notes')).toBe(true);
    expect([...view.entryList('notes')]).toEqual(scanned);
    for (const [i, e] of [...view.entryList('notes')].entries()) expect(e).toBe(scanned[i]);
    expect(view.isKeyed('tags')).toBe(false);
    // a write keys the table too, and lands where the keyed form puts it
    view.apply([{ op: 'add', path: '/tables/tags/rows/7', value: { name: '7' } }]);
    expect(view.isKeyed('tags')).toBe(true);
    expect([...view.entries('tags')].map(([k]) => k)).toEqual(['zeta', 'alpha', 'mid', '7']);
    expect(view.ordOf('notes', '9')).toBe(3);
  });

  it('a table whose array-index keys are out of order is keyed at once, in the keyed order', () => {
    const view = View.fromCompact(structuredClone(doc));
    expect(view.isKeyed('tasks')).toBe(true);
    expect(view.isKeyed('pairs')).toBe(false);
    expect([...view.entryList('tasks')].map((e) => e.key)).toEqual(['0', '2', '10', '-1', '4294967295']);
  });
});
