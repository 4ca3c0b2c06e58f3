import { describe, expect, it } from 'vitest';
import {
  applyKeyed,
  type KeyedDoc,
  keyedOp as O,
  type PatchOp,
  type RebaseConflict,
  rebase,
  type TableSchema,
  toKeyed,
} from '../../src/doc/index.js';
import { UserDbError } from '../../src/errors.js';
import { sampleDoc, tasksSchema, tasksTable } from './fixtures.js';

const base = (): KeyedDoc => toKeyed(sampleDoc());

/** Rebases `local` (one patch) on `base` + `remote`, checking the output patch is strictly valid. */
function replay(remote: PatchOp[], local: PatchOp[]) {
  const newer = applyKeyed(base(), remote);
  const r = rebase(newer, [local]);
  expect(applyKeyed(newer, r.patches[0] ?? [])).toEqual(r.doc);
  return { ...r, newer };
}

function only(conflicts: RebaseConflict[]): RebaseConflict {
  expect(conflicts).toHaveLength(1);
  return conflicts[0] as RebaseConflict;
}

describe('rebase', () => {
  it('keeps both edits on different rows and different fields of one row', () => {
    const r = replay(
      [O.setCell('projects', 'p_1', 'status', 'closed'), O.setCell('projects', 'p_2', 'title', 'Remote')],
      [O.test('projects', 'p_1', 'title', 'First project'), O.setCell('projects', 'p_1', 'title', 'Local')],
    );
    expect(r.conflicts).toEqual([]);
    expect(r.doc.tables.projects?.rows.p_1).toMatchObject({ title: 'Local', status: 'closed' });
    expect(r.doc.tables.projects?.rows.p_2?.title).toBe('Remote');
    expect(r.doc.tables.members).toBe(r.newer.tables.members);
    expect(r.doc.tables.projects?.rows.p_3).toBe(r.newer.tables.projects?.rows.p_3);
  });

  it('same field: local wins, the failed test is rewritten and a field_changed conflict reported', () => {
    const r = replay(
      [O.setCell('projects', 'p_1', 'title', 'Remote')],
      [O.test('projects', 'p_1', 'title', 'First project'), O.setCell('projects', 'p_1', 'title', 'Local')],
    );
    expect(r.doc.tables.projects?.rows.p_1?.title).toBe('Local');
    expect(r.patches[0]).toEqual([
      O.test('projects', 'p_1', 'title', 'Remote'),
      O.setCell('projects', 'p_1', 'title', 'Local'),
    ]);
    expect(only(r.conflicts)).toEqual({
      kind: 'field_changed',
      table: 'projects',
      key: 'p_1',
      field: 'title',
      local: 'Local',
      remote: 'Remote',
      resolution: 'applied',
    });
  });

  it('update vs remote delete: the delete wins and the edit is reported', () => {
    const r = replay(
      [O.removeRow('projects', 'p_1')],
      [
        O.test('projects', 'p_1', 'title', 'First project'),
        O.setCell('projects', 'p_1', 'title', 'Local'),
        O.replaceRow('projects', 'p_1', { id: 'p_1', title: 'Whole' }),
      ],
    );
    expect(r.doc.tables.projects?.rows.p_1).toBeUndefined();
    expect(r.patches[0]).toEqual([]);
    expect(r.conflicts.map((c) => [c.kind, c.key, c.resolution])).toEqual([
      ['row_deleted', 'p_1', 'dropped'],
      ['row_deleted', 'p_1', 'dropped'],
    ]);
    expect(r.conflicts[1]?.local).toEqual({ id: 'p_1', title: 'Whole' });
  });

  it('insert of a key the remote also inserted becomes a replace (local wins)', () => {
    const r = replay(
      [O.addRow('projects', 'p_9', { id: 'p_9', title: 'Remote' })],
      [O.addRow('projects', 'p_9', { id: 'p_9', title: 'Local' })],
    );
    expect(r.patches[0]?.[0]?.op).toBe('replace');
    expect(r.doc.tables.projects?.rows.p_9?.title).toBe('Local');
    expect(only(r.conflicts)).toMatchObject({ kind: 'row_exists', key: 'p_9', resolution: 'applied' });
    expect(only(r.conflicts).remote).toMatchObject({ title: 'Remote' });
  });

  it('drops removals of rows and tables that are already gone, silently', () => {
    const r = replay(
      [O.removeRow('projects', 'p_1'), O.removeTable('members')],
      [O.removeRow('projects', 'p_1'), O.removeTable('members')],
    );
    expect(r.patches[0]).toEqual([]);
    expect(r.conflicts).toEqual([]);
  });

  it('reports table_missing for edits of a table dropped remotely', () => {
    const r = replay(
      [O.removeTable('projects')],
      [
        O.setCell('projects', 'p_1', 'title', 'x'),
        O.addRow('projects', 'p_9', { id: 'p_9' }),
        O.addField('projects', { name: 'tags', type: 'array' }),
        O.replaceSchema('projects', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }),
      ],
    );
    expect(r.patches[0]).toEqual([]);
    expect(r.conflicts.map((c) => c.kind)).toEqual([
      'table_missing',
      'table_missing',
      'table_missing',
      'table_missing',
    ]);
    expect(r.conflicts.every((c) => c.resolution === 'dropped' && c.table === 'projects')).toBe(true);
  });

  it('field removed remotely: a cell edit is dropped (field_missing), a row write loses that field', () => {
    const schema: TableSchema = {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'status', type: 'string' },
        { name: 'created_at', type: 'datetime' },
      ],
      primaryKey: ['id'],
    };
    const r = replay(
      [O.replaceSchema('projects', schema)],
      [
        O.setCell('projects', 'p_1', 'title', 'x'),
        O.replaceRow('projects', 'p_2', { id: 'p_2', title: 'T', status: 'open', created_at: null }),
      ],
    );
    expect(r.conflicts.map((c) => [c.kind, c.key, c.field, c.resolution])).toEqual([
      ['field_missing', 'p_1', 'title', 'dropped'],
      ['field_missing', 'p_2', 'title', 'dropped'],
    ]);
    expect(r.doc.tables.projects?.rows.p_2).toEqual({ id: 'p_2', status: 'open', created_at: null });
  });

  it('field retyped remotely: a value that no longer fits is dropped (schema_conflict)', () => {
    const retyped: TableSchema = {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'title', type: 'any' },
        { name: 'status', type: 'any' },
        { name: 'created_at', type: 'string' },
      ],
      primaryKey: ['id'],
    };
    const intStatus = {
      ...retyped,
      fields: retyped.fields.map((f) => (f.name === 'status' ? { ...f, type: 'integer' as const } : f)),
    };
    const r = replay(
      [
        O.replaceSchema('projects', retyped),
        ...['p_1', 'p_2', 'p_3'].map((k) => O.setCell('projects', k, 'status', null)),
        O.replaceSchema('projects', intStatus),
      ],
      [O.setCell('projects', 'p_1', 'status', 'open-ish'), O.setCell('projects', 'p_1', 'title', 'ok')],
    );
    expect(only(r.conflicts)).toMatchObject({
      kind: 'schema_conflict',
      key: 'p_1',
      field: 'status',
      resolution: 'dropped',
    });
    expect(r.doc.tables.projects?.rows.p_1?.title).toBe('ok');
  });

  it('add table over a remote table: remote rows kept and realigned, local rows win, table_exists reported', () => {
    const local = tasksTable();
    const remoteSchema: TableSchema = {
      fields: [
        { name: 'id', type: 'integer' },
        { name: 'title', type: 'string' },
        { name: 'owner', type: 'string' },
      ],
      primaryKey: ['id'],
    };
    const remote: PatchOp[] = [
      O.addTable('tasks', {
        schema: remoteSchema,
        rows: {
          '1': { id: 1, title: 'remote one', owner: 'ann' },
          '2': { id: 2, title: 'remote two', owner: 'bob' },
        },
      }),
    ];
    const r = replay(remote, [O.addTable('tasks', local)]);
    expect(r.doc.tables.tasks?.schema).toEqual(tasksSchema);
    expect(r.doc.tables.tasks?.rows).toEqual({
      '1': { id: 1, title: 'a', done: false },
      '2': { id: 2, title: 'remote two', done: null },
    });
    expect(r.conflicts.map((c) => c.kind)).toEqual(['table_exists', 'row_exists']);
    expect(r.patches[0]?.map((op) => op.op)).toEqual(['remove', 'add']);
  });

  it('add field that exists remotely: same type is a no-op, another type a schema_conflict', () => {
    const same = replay(
      [O.addField('projects', { name: 'tags', type: 'array' })],
      [O.addField('projects', { name: 'tags', type: 'array' })],
    );
    expect(same.patches[0]).toEqual([]);
    expect(same.conflicts).toEqual([]);
    const other = replay(
      [O.addField('projects', { name: 'tags', type: 'string' })],
      [O.addField('projects', { name: 'tags', type: 'array' })],
    );
    expect(other.patches[0]).toEqual([]);
    expect(only(other.conflicts)).toMatchObject({
      kind: 'schema_conflict',
      field: 'tags',
      resolution: 'dropped',
    });
  });

  it('drops a schema change the remote rows no longer fit', () => {
    const byStatus: TableSchema = {
      ...(sampleDoc().tables.projects?.schema as TableSchema),
      primaryKey: ['status'],
    };
    // Locally only one row is "open"; remotely p_3 is open too, so status is no longer unique.
    const r = replay(
      [O.setCell('projects', 'p_2', 'status', 'open')],
      [O.removeRow('projects', 'p_3'), O.replaceSchema('projects', byStatus)],
    );
    expect(r.patches[0]).toEqual([O.removeRow('projects', 'p_3')]);
    expect(only(r.conflicts)).toMatchObject({
      kind: 'schema_conflict',
      table: 'projects',
      resolution: 'dropped',
    });
  });

  it('replays several patches in order, each rewritten against the doc before it', () => {
    const newer = applyKeyed(base(), [O.removeRow('projects', 'p_2')]);
    const r = rebase(newer, [
      [O.addRow('projects', 'p_2', { id: 'p_2', title: 'again' })],
      [O.test('projects', 'p_2', 'title', 'again'), O.setCell('projects', 'p_2', 'title', 'again!')],
      [],
    ]);
    expect(r.patches).toHaveLength(3);
    expect(r.conflicts).toEqual([]);
    expect(r.doc.tables.projects?.rows.p_2?.title).toBe('again!');
    expect(rebase(newer, []).doc).toBe(newer);
  });

  it('never mutates the base or the pending patches, even when later patches write the same tables', () => {
    const deepFreeze = <T>(v: T): T => {
      if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
        Object.freeze(v);
        for (const child of Object.values(v)) deepFreeze(child);
      }
      return v;
    };
    const newer = applyKeyed(base(), [
      O.setCell('projects', 'p_1', 'title', 'Remote'),
      O.removeRow('projects', 'p_3'),
      O.addTable('tasks', tasksTable()),
    ]);
    const pending: PatchOp[][] = [
      [O.test('projects', 'p_1', 'title', 'First project'), O.setCell('projects', 'p_1', 'title', 'Local')],
      [O.addRow('projects', 'p_4', { id: 'p_4', title: 'Fourth' }), O.removeRow('projects', 'p_2')],
      [O.addTable('tasks', { schema: tasksSchema, rows: { '2': { id: 2, title: 'b', done: true } } })],
      [O.setCell('tasks', '2', 'title', 'b!'), O.addField('projects', { name: 'owner', type: 'string' })],
      [O.setCell('projects', 'p_4', 'owner', 'ann'), O.replaceRow('projects', 'p_1', { id: 'p_1' })],
      [O.setCell('projects', 'p_3', 'title', 'gone'), O.removeRow('members', '[1,"bob"]')],
      [O.replaceSchema('tasks', { ...tasksSchema, fields: tasksSchema.fields.slice(0, 2) })],
      [O.addRow('tasks', '3', { id: 3, title: 'c' }), O.removeTable('members')],
    ];
    const baseCopy = structuredClone(newer);
    const pendingCopy = structuredClone(pending);
    deepFreeze(newer);
    deepFreeze(pending);
    const r = rebase(newer, pending);
    expect(newer).toEqual(baseCopy);
    expect(pending).toEqual(pendingCopy);
    let doc = newer;
    for (const p of r.patches) doc = applyKeyed(doc, p);
    expect(doc).toEqual(r.doc);
    expect(Object.keys(r.doc.tables.projects?.rows ?? {})).toEqual(['p_1', 'p_4']);
    expect(r.doc.tables.projects?.rows.p_4?.owner).toBe('ann');
    expect(r.doc.tables.tasks?.rows).toEqual({
      '1': { id: 1, title: 'a' },
      '2': { id: 2, title: 'b!' },
      '3': { id: 3, title: 'c' },
    });
    expect(r.doc.tables.members).toBeUndefined();
    expect(r.conflicts.map((c) => c.kind)).toEqual(['field_changed', 'row_deleted']);
  });

  it('throws bad_patch on an op outside the keyed grammar', () => {
    expect(() => rebase(base(), [[{ op: 'remove', path: '/tables/projects/rows/0/1/2' }]])).toThrowError(
      UserDbError,
    );
  });
});
