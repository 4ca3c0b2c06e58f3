import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { localStore } from '../../src/api/internal.js';
import { createUserDb, defineSchema, SchemaError, type UserDb } from '../../src/index.js';
import { freshEnv, openTyped, openUntyped, project, record } from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

describe('defineSchema derives Frictionless field types from zod', () => {
  it('maps every supported zod type', () => {
    const s = defineSchema({
      t: {
        fields: {
          id: z.string(),
          email: z.email(),
          status: z.enum(['a', 'b']),
          lit: z.literal('x'),
          at: z.iso.datetime(),
          day: z.iso.date(),
          time: z.iso.time(),
          count: z.number().int(),
          int32: z.int32(),
          int: z.int(),
          score: z.number(),
          ok: z.boolean(),
          meta: z.object({ a: z.string() }),
          dict: z.record(z.string(), z.number()),
          list: z.array(z.string()),
          pair: z.tuple([z.string(), z.number()]),
          either: z.union([z.string(), z.number()]),
          anything: z.unknown(),
          opt: z.string().optional(),
          nul: z.number().int().nullable(),
          def: z.boolean().default(false),
          both: z.iso.datetime().nullable().optional(),
        },
        primaryKey: ['id'],
      },
    });
    expect(s.tables.t.fields).toEqual([
      { name: 'id', type: 'string' },
      { name: 'email', type: 'string' },
      { name: 'status', type: 'string' },
      { name: 'lit', type: 'string' },
      { name: 'at', type: 'datetime' },
      { name: 'day', type: 'date' },
      { name: 'time', type: 'time' },
      { name: 'count', type: 'integer' },
      { name: 'int32', type: 'integer' },
      { name: 'int', type: 'integer' },
      { name: 'score', type: 'number' },
      { name: 'ok', type: 'boolean' },
      { name: 'meta', type: 'object' },
      { name: 'dict', type: 'object' },
      { name: 'list', type: 'array' },
      { name: 'pair', type: 'array' },
      { name: 'either', type: 'any' },
      { name: 'anything', type: 'any' },
      { name: 'opt', type: 'string' },
      { name: 'nul', type: 'integer' },
      { name: 'def', type: 'boolean' },
      { name: 'both', type: 'datetime' },
    ]);
    expect(s.tables.t.primaryKey).toEqual(['id']);
  });

  it('rejects zod types without a JSON form and bad primary keys', () => {
    expect(() =>
      defineSchema({ t: { fields: { id: z.string(), d: z.date() }, primaryKey: ['id'] } }),
    ).toThrow(SchemaError);
    expect(() => defineSchema({ t: { fields: { id: z.bigint() }, primaryKey: ['id'] } })).toThrow(/bigint/);
    expect(() => defineSchema({ t: { fields: { id: z.string() }, primaryKey: ['nope' as 'id'] } })).toThrow(
      SchemaError,
    );
    expect(() => defineSchema({ t: { fields: { id: z.object({}) }, primaryKey: ['id'] } })).toThrow(
      /cannot be a key/,
    );
    expect(() => defineSchema({ t: { fields: { id: 'string' as never }, primaryKey: ['id'] } })).toThrow(
      /zod schema/,
    );
  });
});

describe('declared tables in the document', () => {
  it('are created at open, recorded in the outbox like any edit', async () => {
    const env = freshEnv();
    const db = await openTyped(env);
    open.push(db);
    const schemas = await db.tableSchemas();
    expect(Object.keys(schemas).sort()).toEqual(['members', 'projects']);
    const entries = await localStore(db as unknown as UserDb).readOutbox();
    expect(entries).toHaveLength(1);
    expect(entries[0]?.ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /tables/projects',
      'add /tables/members',
    ]);
  });

  it('are not created twice, and newly declared fields are added with null in existing rows', async () => {
    const env = freshEnv();
    const v1 = defineSchema({ items: { fields: { id: z.string(), a: z.number() }, primaryKey: ['id'] } });
    const db1 = await createUserDb({ ...env, schema: v1 });
    await db1.table('items').insert({ id: 'i1', a: 1 });
    await db1.close();

    const again = await createUserDb({ ...env, schema: v1 });
    expect((await localStore(again as unknown as UserDb).readOutbox()).length).toBe(2);
    await again.close();

    const v2 = defineSchema({
      items: { fields: { id: z.string(), a: z.number(), b: z.string().nullable() }, primaryKey: ['id'] },
    });
    const db2 = await createUserDb({ ...env, schema: v2 });
    open.push(db2);
    expect(await db2.table('items').get('i1')).toEqual({ id: 'i1', a: 1, b: null });
    expect((await localStore(db2 as unknown as UserDb).readOutbox()).at(-1)?.ops).toEqual([
      { op: 'add', path: '/tables/items/schema/fields/-', value: { name: 'b', type: 'string' } },
    ]);
  });
});

describe('untyped schema operations', () => {
  it('createTable, addField (existing rows get null), dropTable', async () => {
    const db = await openUntyped(freshEnv());
    open.push(db);
    await db.createTable('notes', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] });
    const rec = record(db.table('notes').query().observe());
    await db.table('notes').insert({ id: 'n1' });
    await db.addField('notes', { name: 'pinned', type: 'boolean' });
    expect(await db.table('notes').get('n1')).toEqual({ id: 'n1', pinned: null });
    await db.table('notes').update('n1', { pinned: true });
    expect(rec.values.map((rows) => rows.map((r) => ('pinned' in r ? r.pinned : 'absent')))).toEqual([
      [],
      ['absent'],
      [null],
      [true],
    ]);
    await db.dropTable('notes');
    expect(await db.tableSchemas()).toEqual({});
    expect(rec.values.at(-1)).toEqual([]);
    rec.stop();
  });
});

describe('export and import', () => {
  it('export returns the compact document with pending edits; the result is a mutable copy', async () => {
    const db = await openTyped(freshEnv());
    open.push(db);
    await db.table('projects').insert(project('p1', { note: 'n' }));
    const doc = await db.export();
    expect(doc.tables.projects).toEqual({
      schema: {
        fields: [
          { name: 'id', type: 'string' },
          { name: 'title', type: 'string' },
          { name: 'status', type: 'string' },
          { name: 'created_at', type: 'datetime' },
          { name: 'note', type: 'string' },
        ],
        primaryKey: ['id'],
      },
      rows: [['p1', 'Project p1', 'open', '2025-10-14T00:00:00Z', 'n']],
    });
    expect(Object.isFrozen(doc.tables.projects?.rows[0])).toBe(false);
  });

  it('import replaces the whole document as one transaction and keeps declared tables', async () => {
    const env = freshEnv();
    const db = await openTyped(env);
    open.push(db);
    await db.table('projects').insert(project('p1'));
    await db.table('members').insert({ team: 't', user: 1 });
    await db.createTable('scratch', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] });
    const source = await openTyped(freshEnv());
    open.push(source);
    await source.table('projects').insert(project('q1'));
    await source.createTable('notes', { fields: [{ name: 'id', type: 'integer' }], primaryKey: ['id'] });
    await source.untypedTable('notes').insert({ id: 5 });
    await source.dropTable('members');
    const exported = await source.export();

    const rec = record(db.table('projects').query().observe());
    const entriesBefore = (await localStore(db as unknown as UserDb).readOutbox()).length;
    await db.import(exported);
    expect(rec.values).toHaveLength(2);
    expect((await localStore(db as unknown as UserDb).readOutbox()).length).toBe(entriesBefore + 1);
    const after = await db.export();
    expect(Object.keys(after.tables).sort()).toEqual(['members', 'notes', 'projects']);
    expect(after.tables.projects?.rows).toEqual(exported.tables.projects?.rows);
    expect(after.tables.members?.rows).toEqual([]);
    expect(after.tables.notes).toEqual(exported.tables.notes);
    rec.stop();
  });

  it('records row-level changes for a table whose schema did not change', async () => {
    const db = await openTyped(freshEnv());
    open.push(db);
    await db.table('projects').insert(project('p1'));
    await db.table('projects').insert(project('p2'));
    const doc = await db.export();
    const rows = doc.tables.projects?.rows ?? [];
    rows[0] = ['p1', 'renamed', 'open', '2025-10-14T00:00:00Z', null];
    rows.splice(1, 1, ['p3', 'new', 'closed', '2025-10-15T00:00:00Z', null]);
    await db.import(doc);
    const last = (await localStore(db as unknown as UserDb).readOutbox()).at(-1);
    expect(last?.ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'remove /tables/projects/rows/p2',
      'replace /tables/projects/rows/p1',
      'add /tables/projects/rows/p3',
    ]);
    expect((await db.table('projects').query().orderBy('id').toArray()).map((r) => r.title)).toEqual([
      'renamed',
      'new',
    ]);
  });

  it('importing the current document changes nothing', async () => {
    const db = await openTyped(freshEnv());
    open.push(db);
    await db.table('projects').insert(project('p1'));
    const n = (await localStore(db as unknown as UserDb).readOutbox()).length;
    await db.import(await db.export());
    expect((await localStore(db as unknown as UserDb).readOutbox()).length).toBe(n);
  });
});
