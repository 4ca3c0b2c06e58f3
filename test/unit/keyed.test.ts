import { describe, expect, it } from 'vitest';
import {
  applyKeyed,
  type KeyedDoc,
  keyedPath,
  keyedOp as O,
  type PatchOp,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';
import { SchemaError, UserDbError } from '../../src/errors.js';
import { sampleDoc, tasksSchema, tasksTable } from './fixtures.js';

const P = keyedPath;

function badPatch(doc: KeyedDoc, ops: PatchOp[]): UserDbError {
  try {
    applyKeyed(doc, ops);
  } catch (e) {
    if (e instanceof UserDbError) return e;
    throw e;
  }
  throw new Error('expected applyKeyed to throw');
}

describe('applyKeyed', () => {
  const base = () => toKeyed(sampleDoc());

  it('round-trips with the compact form (every row holds every field)', () => {
    const doc = base();
    expect(doc.tables.projects?.rows.p_2).toEqual({
      id: 'p_2',
      title: 'Second',
      status: 'closed',
      created_at: null,
    });
    expect(doc.tables.members?.rows['[1,"ann"]']).toEqual({ org: 1, user: 'ann', role: 'admin' });
    expect(toCompact(doc)).toEqual(sampleDoc());
  });

  it('applies every op shape of the grammar', () => {
    const next = applyKeyed(base(), [
      O.addTable('tasks', tasksTable()),
      O.addRow('tasks', '2', { id: 2, title: 'b' }),
      O.test('tasks', '2', 'title', 'b'),
      O.setCell('tasks', '2', 'done', true),
      O.replaceRow('projects', 'p_1', { id: 'p_1', title: 'Renamed' }),
      O.removeRow('projects', 'p_3'),
      O.addField('projects', { name: 'tags', type: 'array' }),
      O.setCell('projects', 'p_2', 'tags', ['x']),
      O.replaceSchema('members', {
        fields: [
          { name: 'user', type: 'string' },
          { name: 'org', type: 'integer' },
          { name: 'since', type: 'date' },
        ],
        primaryKey: ['org', 'user'],
      }),
    ]);
    expect(next.tables.tasks?.rows).toEqual({
      '1': { id: 1, title: 'a', done: false },
      '2': { id: 2, title: 'b', done: true },
    });
    expect(next.tables.projects?.rows.p_1).toEqual({
      id: 'p_1',
      title: 'Renamed',
      status: null,
      created_at: null,
      tags: null,
    });
    expect(next.tables.projects?.rows.p_3).toBeUndefined();
    expect(next.tables.projects?.rows.p_2?.tags).toEqual(['x']);
    expect(next.tables.members?.rows['[1,"bob"]']).toEqual({ user: 'bob', org: 1, since: null });
    const dropped = applyKeyed(next, [{ op: 'remove', path: P.table('tasks') }]);
    expect(dropped.tables.tasks).toBeUndefined();
  });

  it('never mutates its input and keeps untouched tables and rows identical', () => {
    const doc = base();
    const snapshot = JSON.stringify(doc);
    const next = applyKeyed(doc, [{ op: 'replace', path: P.cell('projects', 'p_2', 'title'), value: 'New' }]);
    expect(JSON.stringify(doc)).toBe(snapshot);
    expect(next).not.toBe(doc);
    expect(next.tables.members).toBe(doc.tables.members);
    expect(next.tables.projects).not.toBe(doc.tables.projects);
    expect(next.tables.projects?.rows.p_1).toBe(doc.tables.projects?.rows.p_1);
    expect(next.tables.projects?.rows.p_3).toBe(doc.tables.projects?.rows.p_3);
    expect(next.tables.projects?.rows.p_2).not.toBe(doc.tables.projects?.rows.p_2);
    expect(applyKeyed(doc, [])).toBe(doc);
  });

  it('does not mutate rows shared after a schema change that keeps them', () => {
    const doc = base();
    const members = doc.tables.members?.rows;
    const snapshot = JSON.stringify(doc);
    const reordered = {
      fields: [
        { name: 'role', type: 'string' as const },
        { name: 'org', type: 'integer' as const },
        { name: 'user', type: 'string' as const },
      ],
      primaryKey: ['org', 'user'],
    };
    const next = applyKeyed(doc, [
      O.replaceSchema('members', reordered),
      O.addRow('members', '[2,"cy"]', { org: 2, user: 'cy' }),
      O.removeRow('members', '[1,"ann"]'),
    ]);
    expect(JSON.stringify(doc)).toBe(snapshot);
    expect(doc.tables.members?.rows).toBe(members);
    expect(Object.keys(next.tables.members?.rows ?? {})).toEqual(['[1,"bob"]', '[2,"cy"]']);
  });

  it('keeps identity for writes that change nothing', () => {
    const doc = base();
    const p1 = doc.tables.projects?.rows.p_1;
    const same = applyKeyed(doc, [
      { op: 'replace', path: P.cell('projects', 'p_1', 'title'), value: 'First project' },
      { op: 'replace', path: P.row('projects', 'p_1'), value: { ...p1 } },
    ]);
    expect(same.tables.projects?.rows.p_1).toBe(p1);
    const reordered = applyKeyed(doc, [
      {
        op: 'replace',
        path: P.schema('members'),
        value: {
          fields: [
            { name: 'role', type: 'string' },
            { name: 'org', type: 'integer' },
            { name: 'user', type: 'string' },
          ],
          primaryKey: ['org', 'user'],
        },
      },
    ]);
    expect(reordered.tables.members?.rows).toBe(doc.tables.members?.rows);
    expect(toCompact(reordered).tables.members?.rows[0]).toEqual(['admin', 1, 'ann']);
  });

  it('treats __proto__ and constructor as ordinary table names, row keys and fields', () => {
    const schema = {
      fields: [
        { name: '__proto__', type: 'string' },
        { name: 'constructor', type: 'integer' },
      ],
      primaryKey: ['__proto__'],
    };
    const doc = applyKeyed(base(), [
      { op: 'add', path: P.table('__proto__'), value: { schema, rows: {} } },
      {
        op: 'add',
        path: P.row('__proto__', '__proto__'),
        value: JSON.parse('{"__proto__":"__proto__","constructor":1}'),
      },
      {
        op: 'add',
        path: P.row('__proto__', 'constructor'),
        value: JSON.parse('{"__proto__":"constructor"}'),
      },
      { op: 'replace', path: P.cell('__proto__', 'constructor', 'constructor'), value: 7 },
      { op: 'add', path: P.row('projects', 'toString'), value: { id: 'toString' } },
    ]);
    expect(Object.getPrototypeOf(doc.tables)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const table = Object.getOwnPropertyDescriptor(doc.tables, '__proto__')?.value;
    expect(Object.keys(table.rows)).toEqual(['__proto__', 'constructor']);
    expect(Object.entries(toCompact(doc).tables).find(([n]) => n === '__proto__')?.[1].rows).toEqual([
      ['__proto__', 1],
      ['constructor', 7],
    ]);
    // Missing rows whose keys name Object.prototype members are still missing.
    expect(badPatch(doc, [{ op: 'remove', path: P.row('projects', 'constructor') }]).message).toMatch(
      /no such row/,
    );
    expect(
      badPatch(doc, [{ op: 'replace', path: P.cell('projects', 'hasOwnProperty', 'title'), value: 'x' }])
        .code,
    ).toBe('bad_patch');
    expect(badPatch(doc, [{ op: 'remove', path: P.table('toString') }]).message).toMatch(/no such table/);
  });

  describe('rejects ops invalid for the document with bad_patch naming the op', () => {
    const cases: [string, PatchOp[], RegExp, { table?: string; key?: string; field?: string }][] = [
      [
        'duplicate table',
        [{ op: 'add', path: P.table('projects'), value: tasksTable() as never }],
        /already exists/,
        { table: 'projects' },
      ],
      ['unknown table', [{ op: 'remove', path: P.table('nope') }], /no such table/, { table: 'nope' }],
      [
        'duplicate row',
        [{ op: 'add', path: P.row('projects', 'p_1'), value: { id: 'p_1' } }],
        /already exists/,
        { key: 'p_1' },
      ],
      [
        'missing row',
        [{ op: 'replace', path: P.row('projects', 'p_9'), value: { id: 'p_9' } }],
        /no such row/,
        { key: 'p_9' },
      ],
      [
        'key mismatch',
        [{ op: 'add', path: P.row('projects', 'p_9'), value: { id: 'p_8' } }],
        /differs/,
        { key: 'p_9' },
      ],
      [
        'unknown field in row',
        [{ op: 'add', path: P.row('projects', 'p_9'), value: { id: 'p_9', nope: 1 } }],
        /unknown field/,
        { field: 'nope' },
      ],
      [
        'wrong type in row',
        [{ op: 'add', path: P.row('projects', 'p_9'), value: { id: 'p_9', title: 3 } }],
        /string/,
        { field: 'title' },
      ],
      [
        'null key',
        [{ op: 'add', path: P.row('projects', 'p_9'), value: { title: 'x' } }],
        /primary key/,
        { field: 'id' },
      ],
      [
        'unknown cell field',
        [{ op: 'replace', path: P.cell('projects', 'p_1', 'nope'), value: 1 }],
        /no such field/,
        { field: 'nope' },
      ],
      [
        'wrong cell type',
        [{ op: 'replace', path: P.cell('projects', 'p_1', 'created_at'), value: 'yesterday' }],
        /datetime/,
        { field: 'created_at' },
      ],
      [
        'NaN cell',
        [{ op: 'replace', path: P.cell('projects', 'p_1', 'title'), value: Number.NaN }],
        /string/,
        { field: 'title' },
      ],
      [
        'key field change',
        [{ op: 'replace', path: P.cell('projects', 'p_1', 'id'), value: 'p_7' }],
        /primary key/,
        { field: 'id' },
      ],
      [
        'failed test',
        [{ op: 'test', path: P.cell('projects', 'p_1', 'title'), value: 'other' }],
        /test failed/,
        { field: 'title' },
      ],
      [
        'existing field',
        [{ op: 'add', path: P.fields('projects'), value: { name: 'title', type: 'string' } }],
        /already exists/,
        { field: 'title' },
      ],
      [
        'bad field type',
        [{ op: 'add', path: P.fields('projects'), value: { name: 'x', type: 'uuid' } }],
        /known "type"/,
        {},
      ],
      [
        'bad schema',
        [{ op: 'replace', path: P.schema('projects'), value: { fields: [], primaryKey: ['id'] } }],
        /invalid table schema/,
        {},
      ],
      [
        'unsupported op',
        [{ op: 'move', path: P.row('projects', 'p_1'), from: '/x' } as unknown as PatchOp],
        /not supported/,
        {},
      ],
      ['replace of a table', [{ op: 'replace', path: P.table('projects'), value: {} }], /not supported/, {}],
      ['test of a row', [{ op: 'test', path: P.row('projects', 'p_1'), value: {} }], /not supported/, {}],
      ['index path', [{ op: 'remove', path: '/tables/projects/rows/0/1/2' }], /not a keyed userdb path/, {}],
      [
        'missing value',
        [{ op: 'add', path: P.row('projects', 'p_9') } as unknown as PatchOp],
        /missing "value"/,
        {},
      ],
    ];
    for (const [name, ops, message, loc] of cases) {
      it(name, () => {
        const doc = base();
        const ok: PatchOp = { op: 'replace', path: P.cell('projects', 'p_2', 'title'), value: 'x' };
        const e = badPatch(doc, [ok, ...ops]);
        expect(e.code).toBe('bad_patch');
        expect(e.message).toMatch(/^op 1 \(/);
        expect(e.message).toMatch(message);
        for (const [k, v] of Object.entries(loc)) expect(e[k as 'table']).toBe(v);
      });
    }
  });

  it('throws SchemaError when a schema change breaks the keys or values', () => {
    const doc = applyKeyed(base(), [
      { op: 'add', path: P.table('tasks'), value: tasksTable() as never },
      { op: 'add', path: P.row('tasks', '2'), value: { id: 2, title: 'a' } },
    ]);
    const byTitle = { ...tasksSchema, primaryKey: ['title'] };
    expect(() =>
      applyKeyed(doc, [{ op: 'replace', path: P.schema('tasks'), value: byTitle as never }]),
    ).toThrowError(/op 0 .*not unique/);
    const byDone = { ...tasksSchema, primaryKey: ['done'] };
    expect(() =>
      applyKeyed(doc, [{ op: 'replace', path: P.schema('tasks'), value: byDone as never }]),
    ).toThrowError(SchemaError);
    const retyped = {
      fields: [
        { name: 'id', type: 'integer' },
        { name: 'title', type: 'integer' },
      ],
      primaryKey: ['id'],
    };
    const e = (() => {
      try {
        applyKeyed(doc, [{ op: 'replace', path: P.schema('tasks'), value: retyped }]);
      } catch (err) {
        return err as SchemaError;
      }
    })();
    expect(e).toBeInstanceOf(SchemaError);
    expect(e?.field).toBe('title');
    const widened = {
      fields: [
        { name: 'id', type: 'integer' },
        { name: 'title', type: 'any' },
      ],
      primaryKey: ['id'],
    };
    const next = applyKeyed(doc, [{ op: 'replace', path: P.schema('tasks'), value: widened }]);
    expect(next.tables.tasks?.rows['2']).toEqual({ id: 2, title: 'a' });
  });

  it('re-keys rows when the primary key changes', () => {
    const doc = applyKeyed(base(), [
      { op: 'add', path: P.table('tasks'), value: tasksTable() as never },
      { op: 'replace', path: P.schema('tasks'), value: { ...tasksSchema, primaryKey: ['title'] } as never },
    ]);
    expect(Object.keys(doc.tables.tasks?.rows ?? {})).toEqual(['a']);
  });
});
