import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, type UserDb, ValidationError } from '../../src/index.js';
import { freshEnv, openUntyped } from './helpers.js';

let db: UserDb;

beforeAll(async () => {
  db = await openUntyped(freshEnv());
  await db.createTable('items', {
    fields: [
      { name: 'id', type: 'integer' },
      { name: 'name', type: 'string' },
      { name: 'group', type: 'string' },
      { name: 'score', type: 'number' },
      { name: 'at', type: 'datetime' },
      { name: 'tags', type: 'array' },
    ],
    primaryKey: ['id'],
  });
  await db.transaction(async () => {
    const t = db.table('items');
    await t.insert({ id: 1, name: 'a', group: 'x', score: 3, at: '2025-01-01T00:00:00Z', tags: ['p'] });
    await t.insert({ id: 2, name: 'b', group: 'y', score: 1, at: '2025-01-01T00:00:00.5Z', tags: [] });
    await t.insert({
      id: 3,
      name: 'c',
      group: 'x',
      score: null,
      at: '2025-01-01T01:00:00+02:00',
      tags: null,
    });
    await t.insert({
      id: 4,
      name: 'd',
      group: 'y',
      score: 3,
      at: '2024-12-31T23:59:59.999999Z',
      tags: ['q'],
    });
    await t.insert({ id: 5, name: 'e', group: 'x', score: 2, at: null, tags: ['p'] });
  });
});

afterAll(async () => {
  await db.close();
});

const ids = (rows: readonly { id?: unknown }[]): unknown[] => rows.map((r) => r.id);
const q = () => db.table('items').query();

describe('where', () => {
  it('supports == != < <= > >= in', async () => {
    expect(ids(await q().where('group', '==', 'x').toArray())).toEqual([1, 3, 5]);
    expect(ids(await q().where('group', '!=', 'x').toArray())).toEqual([2, 4]);
    expect(ids(await q().where('score', '<', 3).toArray())).toEqual([2, 5]);
    expect(ids(await q().where('score', '<=', 2).toArray())).toEqual([2, 5]);
    expect(ids(await q().where('score', '>', 1).toArray())).toEqual([1, 4, 5]);
    expect(ids(await q().where('score', '>=', 3).toArray())).toEqual([1, 4]);
    expect(ids(await q().where('name', 'in', ['a', 'e', 'zz']).toArray())).toEqual([1, 5]);
  });

  it('matches null with == / != / in, never with range operators', async () => {
    expect(ids(await q().where('score', '==', null).toArray())).toEqual([3]);
    expect(ids(await q().where('score', '!=', null).toArray())).toEqual([1, 2, 4, 5]);
    expect(ids(await q().where('score', 'in', [null, 1]).toArray())).toEqual([2, 3]);
    expect(ids(await q().where('score', '<', 100).toArray())).not.toContain(3);
    expect(await q().where('score', '>', null).count()).toBe(0);
  });

  it('compares arrays and objects by value', async () => {
    expect(ids(await q().where('tags', '==', ['p']).toArray())).toEqual([1, 5]);
  });

  it('compares datetimes by instant (offsets, fractions beyond milliseconds)', async () => {
    expect(ids(await q().where('at', '==', '2024-12-31T23:00:00.000Z').toArray())).toEqual([3]);
    expect(ids(await q().where('at', '<', '2025-01-01T00:00:00Z').toArray())).toEqual([3, 4]);
    expect(
      ids(
        await q()
          .where('at', '>', new Date('2025-01-01T00:00:00.000Z') as never)
          .toArray(),
      ),
    ).toEqual([2]);
  });

  it('combines conditions with AND and uses the key for a pinned primary key', async () => {
    expect(ids(await q().where('id', '==', 3).where('group', '==', 'x').toArray())).toEqual([3]);
    expect(ids(await q().where('id', '==', 3).where('group', '==', 'y').toArray())).toEqual([]);
    expect(ids(await q().where('id', '==', 42).toArray())).toEqual([]);
  });
});

describe('datetime primary keys', () => {
  it('match by instant with ==, like any datetime field', async () => {
    await db.createTable('events', { fields: [{ name: 'at', type: 'datetime' }], primaryKey: ['at'] });
    await db.table('events').insert({ at: '2025-01-01T00:00:00Z' });
    const rows = await db
      .table('events')
      .query()
      .where('at', '==', '2025-01-01T01:00:00.000+01:00')
      .toArray();
    expect(rows).toHaveLength(1);
  });
});

describe('orderBy, limit, offset', () => {
  it('sorts ascending and descending, nulls first ascending', async () => {
    expect(ids(await q().orderBy('score').toArray())).toEqual([3, 2, 5, 1, 4]);
    expect(ids(await q().orderBy('score', 'desc').toArray())).toEqual([1, 4, 5, 2, 3]);
    expect(ids(await q().orderBy('at').toArray())).toEqual([5, 3, 4, 1, 2]);
  });

  it('sorts by several keys and keeps ties in table order (stable)', async () => {
    expect(ids(await q().orderBy('group').orderBy('score', 'desc').toArray())).toEqual([1, 5, 3, 4, 2]);
    expect(ids(await q().orderBy('group').toArray())).toEqual([1, 3, 5, 2, 4]);
  });

  it('pages with offset and limit, and counts/first on the result', async () => {
    expect(ids(await q().orderBy('name').offset(1).limit(2).toArray())).toEqual([2, 3]);
    expect(ids(await q().limit(2).toArray())).toEqual([1, 2]);
    expect(ids(await q().offset(4).toArray())).toEqual([5]);
    expect(await q().where('group', '==', 'x').count()).toBe(3);
    expect((await q().orderBy('name', 'desc').first())?.id).toBe(5);
    expect(await q().where('name', '==', 'none').first()).toBeUndefined();
    expect(await q().limit(0).first()).toBeUndefined();
  });

  it('is immutable: refining a query does not change the original', async () => {
    const base = q().where('group', '==', 'x');
    const narrowed = base.where('score', '>', 2);
    expect(await base.count()).toBe(3);
    expect(await narrowed.count()).toBe(1);
  });
});

describe('bad queries', () => {
  it('rejects unknown fields, bad operators, bad values and bad limits', async () => {
    await expect(q().where('nope', '==', 1).toArray()).rejects.toMatchObject({
      name: 'ValidationError',
      table: 'items',
      field: 'nope',
    });
    await expect(
      q()
        .where('id', '~' as never, 1)
        .toArray(),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(q().where('id', '==', 'one').toArray()).rejects.toBeInstanceOf(ValidationError);
    await expect(
      q()
        .where('id', 'in', 1 as never)
        .toArray(),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(q().orderBy('nope').toArray()).rejects.toBeInstanceOf(ValidationError);
    expect(() => q().limit(-1)).toThrow(ValidationError);
    expect(() => q().offset(1.5)).toThrow(ValidationError);
    expect(() => q().orderBy('id', 'up' as never)).toThrow(ValidationError);
  });

  it('rejects a query on an unknown table with NotFoundError', async () => {
    await expect(db.table('missing').query().toArray()).rejects.toBeInstanceOf(NotFoundError);
    await expect(db.table('missing').get('x')).rejects.toMatchObject({
      name: 'NotFoundError',
      table: 'missing',
    });
  });
});
