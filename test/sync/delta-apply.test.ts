/** applyChain (src/sync/delta.ts): server changes applied to a compact base and translated to keyed ops. */
import { describe, expect, it } from 'vitest';
import {
  applyCompact,
  applyKeyed,
  type CompactDoc,
  type Json,
  type PatchOp,
  toKeyed,
} from '../../src/doc/index.js';
import { InvalidChangeError, type RemoteDelta } from '../../src/remote/index.js';
import { applyChain } from '../../src/sync/delta.js';
import { docWith, projectsSchema } from './helpers/fixtures.js';

const base = docWith([
  ['p_1', 'One', 'open'],
  ['p_2', 'Two', 'open'],
  ['p_3', 'Three', 'open'],
]);

let tick = 0;
function change(ops: PatchOp[] | null, clientId: string | null = 'other'): RemoteDelta {
  tick += 1;
  return {
    before: `2026-01-01T00:00:${String(tick).padStart(2, '0')}.000000Z`,
    after: `2026-01-01T00:00:${String(tick + 1).padStart(2, '0')}.000000Z`,
    ops,
    clientId,
    batchSeq: clientId === null ? null : 1,
  };
}

/** The chain's keyed ops replayed on the keyed base equal the keyed form of the new document. */
function expectTranslated(doc: CompactDoc, changes: RemoteDelta[]) {
  const { doc: next, applied } = applyChain(doc, changes);
  const expected = changes.reduce((d, c) => applyCompact(d, c.ops ?? []), doc);
  expect(next).toEqual(expected);
  let keyed = toKeyed(doc);
  for (const a of applied) {
    expect(a.keyed).not.toBeNull();
    keyed = applyKeyed(keyed, a.keyed ?? []);
  }
  expect(keyed).toEqual(toKeyed(expected));
  return applied;
}

describe('applyChain', () => {
  it('translates cell, row, insert and delete ops with shifting indexes', () => {
    const applied = expectTranslated(base, [
      change([
        { op: 'remove', path: '/tables/projects/rows/0' },
        { op: 'replace', path: '/tables/projects/rows/0/1', value: 'Two!' },
        { op: 'add', path: '/tables/projects/rows/-', value: ['p_4', 'Four', 'open'] },
      ]),
      change([{ op: 'replace', path: '/tables/projects/rows/2', value: ['p_4', 'Four!', 'done'] }]),
    ]);
    expect(applied[0]?.keyed).toEqual([
      { op: 'remove', path: '/tables/projects/rows/p_1' },
      { op: 'replace', path: '/tables/projects/rows/p_2/title', value: 'Two!' },
      { op: 'add', path: '/tables/projects/rows/p_4', value: { id: 'p_4', title: 'Four', status: 'open' } },
    ]);
  });

  it('a change of a key field becomes remove + add of the row', () => {
    const applied = expectTranslated(base, [
      change([{ op: 'replace', path: '/tables/projects/rows/1/0', value: 'p_9' }]),
    ]);
    expect(applied[0]?.keyed?.map((o) => `${o.op} ${o.path}`)).toEqual([
      'remove /tables/projects/rows/p_2',
      'add /tables/projects/rows/p_9',
    ]);
  });

  it('table-level ops re-emit the table whole; a new table is added', () => {
    const applied = expectTranslated(base, [
      change([
        { op: 'replace', path: '/tables/projects/rows/0/1', value: 'Before schema change' },
        {
          op: 'replace',
          path: '/tables/projects',
          value: { schema: projectsSchema, rows: [['p_7', 'Seven', 'open']] } as unknown as Json,
        },
        {
          op: 'add',
          path: '/tables/notes',
          value: { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, rows: [['n1']] },
        },
      ]),
    ]);
    expect(applied[0]?.keyed?.map((o) => `${o.op} ${o.path}`)).toEqual([
      'remove /tables/projects',
      'add /tables/projects',
      'add /tables/notes',
    ]);
  });

  it('collects test ops with the value written over them', () => {
    const { applied } = applyChain(base, [
      change([
        { op: 'test', path: '/tables/projects/rows/2/1', value: 'Three' },
        { op: 'replace', path: '/tables/projects/rows/2/1', value: 'Mine' },
      ]),
    ]);
    expect(applied[0]?.tests).toEqual([
      { table: 'projects', key: 'p_3', field: 'title', expected: 'Three', written: 'Mine' },
    ]);
  });

  it('a root change is applied, validated whole, and leaves no keyed form', () => {
    const other = docWith([['p_5', 'Five', 'open']]);
    const { doc, applied } = applyChain(base, [change([{ op: 'replace', path: '', value: other as never }])]);
    expect(doc).toEqual(other);
    expect(applied[0]?.keyed).toBeNull();
  });

  it.each([
    ['a row index out of range', [{ op: 'remove', path: '/tables/projects/rows/3' }]],
    ['a value of the wrong type', [{ op: 'replace', path: '/tables/projects/rows/0/1', value: 7 }]],
    ['a duplicate key', [{ op: 'add', path: '/tables/projects/rows/-', value: ['p_2', 'Again', 'open'] }]],
    ['a key changed onto another row', [{ op: 'replace', path: '/tables/projects/rows/0/0', value: 'p_3' }]],
    ['a row of the wrong width', [{ op: 'add', path: '/tables/projects/rows/-', value: ['p_8'] }]],
    ['a failing test', [{ op: 'test', path: '/tables/projects/rows/0/1', value: 'Not it' }]],
    ['a missing table', [{ op: 'replace', path: '/tables/nope/rows/0/1', value: 'x' }]],
    ['an invalid table', [{ op: 'replace', path: '/tables/projects/schema/primaryKey', value: ['nope'] }]],
  ] as [string, PatchOp[]][])('refuses %s with InvalidChangeError', (_what, ops) => {
    expect(() => applyChain(base, [change(ops)])).toThrow(InvalidChangeError);
  });

  it('refuses a change without ops', () => {
    expect(() => applyChain(base, [change(null)])).toThrow(InvalidChangeError);
  });

  it('a key moved away frees it for a later row of the same chain', () => {
    expectTranslated(base, [
      change([{ op: 'replace', path: '/tables/projects/rows/0/0', value: 'p_0' }]),
      change([{ op: 'add', path: '/tables/projects/rows/-', value: ['p_1', 'One again', 'open'] }]),
    ]);
  });

  it('never mutates the base it was given', () => {
    const before = structuredClone(base);
    applyChain(base, [change([{ op: 'remove', path: '/tables/projects/rows/0' }])]);
    expect(base).toEqual(before);
  });
});
