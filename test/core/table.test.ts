import { afterEach, describe, expect, it } from 'vitest';
import { localStore } from '../../src/api/internal.js';
import { DuplicateKeyError, NotFoundError, type UserDb, ValidationError } from '../../src/index.js';
import { freshEnv, openTyped, openUntyped, project, type TestSchema } from './helpers.js';

const open: UserDb[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

async function typed(): Promise<UserDb<TestSchema>> {
  const db = await openTyped(freshEnv());
  open.push(db as unknown as UserDb);
  return db;
}

describe('insert', () => {
  it('stores a complete row (absent optional fields null, zod defaults applied) and returns it', async () => {
    const db = await typed();
    const row = await db.table('projects').insert(project('p1'));
    expect(row).toEqual({ ...project('p1'), note: null });
    expect(Object.keys(row)).toEqual(['id', 'title', 'status', 'created_at', 'note']);
    expect(await db.table('projects').get('p1')).toBe(row);
    const m = await db.table('members').insert({ team: 't1', user: 7 });
    expect(m).toEqual({ team: 't1', user: 7, role: 'member' });
  });

  it('returns frozen rows that the application cannot change', async () => {
    const db = await openUntyped(freshEnv());
    open.push(db);
    await db.createTable('docs', {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'data', type: 'object' },
      ],
      primaryKey: ['id'],
    });
    const data = { nested: { list: [1, 2] } };
    const row = await db.table('docs').insert({ id: 'd', data });
    expect(Object.isFrozen(row)).toBe(true);
    expect(Object.isFrozen((row.data as { nested: object }).nested)).toBe(true);
    // the application's own object was copied, not frozen
    expect(Object.isFrozen(data)).toBe(false);
    data.nested.list.push(3);
    expect(row.data).toEqual({ nested: { list: [1, 2] } });
  });

  it('rejects a duplicate key with DuplicateKeyError naming table and key', async () => {
    const db = await typed();
    await db.table('projects').insert(project('p1'));
    const err = await db
      .table('projects')
      .insert(project('p1', { title: 'other' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateKeyError);
    expect(err).toMatchObject({ table: 'projects', key: 'p1', code: 'duplicate_key' });
    expect((err as Error).message).toContain('"projects"');
    expect((err as Error).message).toContain('"p1"');
    expect((await db.table('projects').get('p1'))?.title).toBe('Project p1');
  });

  it('converts a Date to an ISO string for a datetime field', async () => {
    const db = await typed();
    const row = await db.table('projects').insert({
      ...project('p1'),
      created_at: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6)) as unknown as string,
    });
    expect(row.created_at).toBe('2025-01-02T03:04:05.006Z');
  });
});

describe('upsert', () => {
  it('inserts a missing row and replaces an existing one (absent fields become null)', async () => {
    const db = await typed();
    const t = db.table('projects');
    await t.upsert(project('p1', { note: 'n' }));
    expect((await t.get('p1'))?.note).toBe('n');
    const replaced = await t.upsert(project('p1', { title: 'T2' }));
    expect(replaced).toEqual({ ...project('p1', { title: 'T2' }), note: null });
  });

  it('writes nothing when the row is unchanged', async () => {
    const db = await typed();
    const t = db.table('projects');
    const first = await t.upsert(project('p1'));
    const entries = (await localStore(db as unknown as UserDb).readOutbox()).length;
    const second = await t.upsert(project('p1'));
    expect(second).toBe(first);
    expect((await localStore(db as unknown as UserDb).readOutbox()).length).toBe(entries);
  });
});

describe('update', () => {
  it('changes only the given fields, as test+replace pairs per field', async () => {
    const db = await typed();
    const t = db.table('projects');
    await t.insert(project('p1'));
    const row = await t.update('p1', { title: 'New', note: 'x' });
    expect(row).toMatchObject({ id: 'p1', title: 'New', note: 'x', status: 'open' });
    const last = (await localStore(db as unknown as UserDb).readOutbox()).at(-1);
    expect(last?.ops).toEqual([
      { op: 'test', path: '/tables/projects/rows/p1/title', value: 'Project p1' },
      { op: 'replace', path: '/tables/projects/rows/p1/title', value: 'New' },
      { op: 'test', path: '/tables/projects/rows/p1/note', value: null },
      { op: 'replace', path: '/tables/projects/rows/p1/note', value: 'x' },
    ]);
  });

  it('fails with NotFoundError for a missing row', async () => {
    const db = await typed();
    const err = await db
      .table('projects')
      .update('nope', { title: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ table: 'projects', key: 'nope' });
  });

  it('accepts a key field with its current value, rejects a changed one', async () => {
    const db = await openUntyped(freshEnv());
    open.push(db);
    await db.createTable('t', {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'v', type: 'integer' },
      ],
      primaryKey: ['id'],
    });
    await db.table('t').insert({ id: 'a', v: 1 });
    await db.table('t').update('a', { id: 'a', v: 2 });
    expect((await db.table('t').get('a'))?.v).toBe(2);
    await expect(db.table('t').update('a', { id: 'b' })).rejects.toMatchObject({
      name: 'ValidationError',
      table: 't',
      key: 'a',
      field: 'id',
    });
  });

  it('writes nothing when no value changes, and keeps the row object', async () => {
    const db = await typed();
    const t = db.table('projects');
    const row = await t.insert(project('p1'));
    const n = (await localStore(db as unknown as UserDb).readOutbox()).length;
    expect(await t.update('p1', { title: 'Project p1', note: undefined })).toBe(row);
    expect((await localStore(db as unknown as UserDb).readOutbox()).length).toBe(n);
  });
});

describe('delete and get', () => {
  it('deletes an existing row, ignores a missing one', async () => {
    const db = await typed();
    const t = db.table('projects');
    await t.insert(project('p1'));
    expect(await t.delete('p1')).toBe(true);
    expect(await t.get('p1')).toBeUndefined();
    expect(await t.delete('p1')).toBe(false);
  });

  it('addresses composite keys with arrays in primary-key order', async () => {
    const db = await typed();
    const m = db.table('members');
    await m.insert({ team: 'a', user: 1, role: 'admin' });
    await m.insert({ team: 'a', user: 2 });
    expect((await m.get(['a', 1]))?.role).toBe('admin');
    await m.update(['a', 2], { role: 'owner' });
    expect((await m.get(['a', 2]))?.role).toBe('owner');
    await m.delete(['a', 1]);
    expect(await m.query().count()).toBe(1);
    await expect(m.get('a' as unknown as [string, number])).rejects.toBeInstanceOf(ValidationError);
  });

  it('reads its own un-awaited writes (writes and reads run in call order)', async () => {
    const db = await typed();
    const t = db.table('projects');
    const w = t.insert(project('p1'));
    expect(await t.get('p1')).toMatchObject({ id: 'p1' });
    await w;
  });
});
