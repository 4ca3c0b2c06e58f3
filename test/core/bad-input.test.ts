import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createUserDb,
  defineSchema,
  NotFoundError,
  SchemaError,
  type UserDb,
  type UserDbError,
  ValidationError,
} from '../../src/index.js';
import { type Env, freshEnv, openTyped, project, rawAll, type TestSchema } from './helpers.js';

let env: Env;
let db: UserDb<TestSchema>;

beforeAll(async () => {
  env = freshEnv();
  db = await openTyped(env);
  await db.createTable('free', {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'num', type: 'number' },
      { name: 'list', type: 'array' },
      { name: 'obj', type: 'object' },
      { name: 'at', type: 'datetime' },
      { name: 'any', type: 'any' },
    ],
    primaryKey: ['id'],
  });
  await db.table('projects').insert(project('p1'));
  await db.untypedTable('free').insert({ id: 'f1', num: 1 });
});

afterAll(async () => {
  await db.close();
});

/** Runs `attempt`, expects it to reject with `type`, and checks that nothing changed, locally or durably. */
async function rejectsUnchanged(
  attempt: () => Promise<unknown>,
  type: new (...args: never[]) => UserDbError,
  where: Partial<Pick<UserDbError, 'table' | 'key' | 'field'>> = {},
): Promise<UserDbError> {
  const doc = await db.export();
  const outbox = await rawAll(env, 'outbox');
  const err = await attempt().then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  expect(err).toMatchObject(where);
  // the message names the table, key and field
  for (const v of Object.values(where)) expect((err as Error).message).toContain(`"${v as string}"`);
  expect(await db.export()).toEqual(doc);
  expect(await rawAll(env, 'outbox')).toEqual(outbox);
  return err as UserDbError;
}

const projects = () => db.table('projects');
const free = () => db.untypedTable('free');

describe('bad input leaves local state unchanged', () => {
  it('wrong field type (zod and codec)', async () => {
    await rejectsUnchanged(
      () => projects().insert({ ...project('p2'), title: 42 as never }),
      ValidationError,
      {
        table: 'projects',
        key: 'p2',
        field: 'title',
      },
    );
    await rejectsUnchanged(
      () => projects().insert({ ...project('p2'), status: 'archived' as never }),
      ValidationError,
      {
        field: 'status',
      },
    );
    await rejectsUnchanged(() => projects().update('p1', { created_at: 'yesterday' }), ValidationError, {
      table: 'projects',
      key: 'p1',
      field: 'created_at',
    });
    await rejectsUnchanged(() => free().insert({ id: 'x', num: 'one' }), ValidationError, { field: 'num' });
    await rejectsUnchanged(() => free().update('f1', { list: { not: 'an array' } }), ValidationError, {
      key: 'f1',
      field: 'list',
    });
  });

  it('null in a field that does not allow it', async () => {
    await rejectsUnchanged(() => projects().update('p1', { title: null as never }), ValidationError, {
      field: 'title',
    });
  });

  it('unknown field', async () => {
    await rejectsUnchanged(
      () => projects().insert({ ...project('p2'), colour: 'red' } as never),
      ValidationError,
      {
        table: 'projects',
        field: 'colour',
      },
    );
    await rejectsUnchanged(() => projects().update('p1', { colour: 'red' } as never), ValidationError, {
      key: 'p1',
      field: 'colour',
    });
  });

  it('unknown table', async () => {
    await rejectsUnchanged(() => db.untypedTable('nope').insert({ id: 'x' }), NotFoundError, {
      table: 'nope',
    });
    await rejectsUnchanged(() => db.untypedTable('nope').update('x', {}), NotFoundError, { table: 'nope' });
    await rejectsUnchanged(() => db.untypedTable('nope').delete('x'), NotFoundError, { table: 'nope' });
    await rejectsUnchanged(() => db.dropTable('nope'), NotFoundError, { table: 'nope' });
    await rejectsUnchanged(() => db.addField('nope', { name: 'a', type: 'string' }), NotFoundError, {
      table: 'nope',
    });
  });

  it('missing or null primary key', async () => {
    const { id: _, ...noId } = project('p2');
    await rejectsUnchanged(() => projects().insert(noId as never), ValidationError, {
      table: 'projects',
      field: 'id',
    });
    await rejectsUnchanged(
      () => projects().insert({ ...project('p2'), id: null as never }),
      ValidationError,
      {
        field: 'id',
      },
    );
    await rejectsUnchanged(() => projects().update(null as never, { title: 'x' }), ValidationError);
    await rejectsUnchanged(() => db.table('members').insert({ team: 't' } as never), ValidationError, {
      field: 'user',
    });
    await rejectsUnchanged(() => db.table('members').get(['t'] as never), ValidationError);
  });

  it('NaN and Infinity, also nested', async () => {
    await rejectsUnchanged(() => free().insert({ id: 'x', num: Number.NaN }), ValidationError, {
      field: 'num',
    });
    await rejectsUnchanged(() => free().insert({ id: 'x', num: Number.POSITIVE_INFINITY }), ValidationError);
    const err = await rejectsUnchanged(
      () => free().insert({ id: 'x', obj: { a: [1, -Infinity] } }),
      ValidationError,
      {
        field: 'obj',
      },
    );
    expect(err.message).toMatch(/-Infinity at \.a\[1\]/);
  });

  it('functions, class instances and symbols', async () => {
    await rejectsUnchanged(() => free().insert({ id: 'x', any: (() => 1) as never }), ValidationError, {
      field: 'any',
    });
    await rejectsUnchanged(() => free().insert({ id: 'x', obj: { f: () => 1 } as never }), ValidationError);
    await rejectsUnchanged(() => free().insert({ id: 'x', any: new Map() as never }), ValidationError);
    await rejectsUnchanged(() => free().insert({ id: 'x', any: Symbol('s') as never }), ValidationError);
    await rejectsUnchanged(() => free().insert({ id: 'x', any: 10n as never }), ValidationError);
  });

  it('undefined inside arrays (and holes)', async () => {
    const err = await rejectsUnchanged(
      () => free().insert({ id: 'x', list: [1, undefined, 3] as never }),
      ValidationError,
      {
        field: 'list',
      },
    );
    expect(err.message).toMatch(/undefined/);
    // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
    await rejectsUnchanged(() => free().insert({ id: 'x', list: [1, , 3] as never }), ValidationError);
    await rejectsUnchanged(
      () => free().insert({ id: 'x', obj: { a: [undefined] } as never }),
      ValidationError,
    );
  });

  it('a Date where a string is expected is rejected; for datetime fields it is converted', async () => {
    await rejectsUnchanged(() => projects().update('p1', { title: new Date() as never }), ValidationError, {
      field: 'title',
    });
    await rejectsUnchanged(
      () => free().insert({ id: 'x', at: new Date(Number.NaN) as never }),
      ValidationError,
      {
        field: 'at',
      },
    );
    const row = await free().insert({ id: 'dated', at: new Date('2025-10-14T00:00:00Z') });
    expect(row.at).toBe('2025-10-14T00:00:00.000Z');
    await free().delete('dated');
  });

  it('a non-object row or changes', async () => {
    await rejectsUnchanged(() => projects().insert('row' as never), ValidationError, { table: 'projects' });
    await rejectsUnchanged(() => projects().insert([] as never), ValidationError);
    await rejectsUnchanged(() => projects().update('p1', null as never), ValidationError);
  });

  it('bad schemas for createTable / addField', async () => {
    await rejectsUnchanged(
      () => db.createTable('t2', { fields: [{ name: 'id', type: 'uuid' as never }], primaryKey: ['id'] }),
      SchemaError,
      { table: 't2' },
    );
    await rejectsUnchanged(
      () => db.createTable('t2', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['nope'] }),
      SchemaError,
    );
    await rejectsUnchanged(
      () => db.createTable('t2', { fields: [{ name: 'o', type: 'object' }], primaryKey: ['o'] }),
      SchemaError,
    );
    await rejectsUnchanged(
      () => db.createTable('free', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }),
      SchemaError,
      {
        table: 'free',
      },
    );
    await rejectsUnchanged(() => db.addField('free', { name: 'num', type: 'string' }), SchemaError, {
      field: 'num',
    });
    await rejectsUnchanged(() => db.addField('free', { name: 'z', type: 'text' as never }), SchemaError);
  });

  it('an invalid document given to import', async () => {
    await rejectsUnchanged(() => db.import({ version: 2, tables: {} }), SchemaError);
    await rejectsUnchanged(
      () =>
        db.import({
          version: 1,
          tables: {
            t: { schema: { fields: [{ name: 'id', type: 'integer' }], primaryKey: ['id'] }, rows: [['1']] },
          },
        }),
      ValidationError,
      { table: 't' },
    );
    // a declared table must match its declaration, and its rows its zod schemas
    await rejectsUnchanged(
      () =>
        db.import({
          version: 1,
          tables: {
            projects: {
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
              rows: [['p9', 'T', 'archived', '2025-01-01T00:00:00Z', null]],
            },
          },
        }),
      ValidationError,
      { table: 'projects', key: 'p9', field: 'status' },
    );
  });
});

describe('text PostgreSQL cannot store is refused at write time', () => {
  // jsonb rejects U+0000 (22P05) and lone surrogates (22P02): such a value would stop sync for good
  const bad = ['nul\u0000here', 'high\uD800', 'low\uDC00x', '\uDBFF'];

  it('in string fields, naming table, key and field (insert and update)', async () => {
    for (const text of bad) {
      const err = await rejectsUnchanged(
        () => projects().insert(project('p_bad', { title: text })),
        ValidationError,
        { table: 'projects', key: 'p_bad', field: 'title' },
      );
      expect(err.message).toMatch(/U\+(0000|D800|DC00|DBFF)/);
      await rejectsUnchanged(() => projects().update('p1', { note: text }), ValidationError, {
        table: 'projects',
        key: 'p1',
        field: 'note',
      });
    }
  });

  it('in primary key values', async () => {
    await rejectsUnchanged(() => projects().insert(project('k\u0000')), ValidationError, {
      table: 'projects',
      field: 'id',
    });
  });

  it('nested in object, array and any values, and in object keys', async () => {
    const err = await rejectsUnchanged(
      () => free().insert({ id: 'x', obj: { a: ['ok', 'b\u0000'] } }),
      ValidationError,
      { table: 'free', key: 'x', field: 'obj' },
    );
    expect(err.message).toMatch(/U\+0000 at index 1 at \.a\[1\]/);
    await rejectsUnchanged(() => free().insert({ id: 'x', list: [{ k: '\uD83D' }] }), ValidationError, {
      field: 'list',
    });
    await rejectsUnchanged(() => free().update('f1', { any: { 'key\u0000': 1 } }), ValidationError, {
      table: 'free',
      key: 'f1',
      field: 'any',
    });
    await rejectsUnchanged(() => free().update('f1', { any: '\uDE00' }), ValidationError, { field: 'any' });
  });

  it('in table and field names', async () => {
    const fields = [{ name: 'id', type: 'string' as const }];
    await rejectsUnchanged(() => db.createTable('t\u0000', { fields, primaryKey: ['id'] }), SchemaError);
    await rejectsUnchanged(() => db.createTable('t\uD800', { fields, primaryKey: ['id'] }), SchemaError);
    await rejectsUnchanged(
      () =>
        db.createTable('t_ok', { fields: [{ name: 'i\u0000d', type: 'string' }], primaryKey: ['i\u0000d'] }),
      SchemaError,
      { table: 't_ok' },
    );
    await rejectsUnchanged(() => db.addField('free', { name: 'f\uDC00', type: 'string' }), SchemaError, {
      table: 'free',
    });
  });

  it('well-formed text, surrogate pairs included, is accepted', async () => {
    await free().insert({ id: 'emoji', obj: { '😀': 'a😀b' }, any: ['\uD83D\uDE00'] });
    expect((await free().get('emoji'))?.obj).toEqual({ '😀': 'a😀b' });
  });
});

describe('misuse of the API gets typed errors', () => {
  it('db.transaction() without a function', async () => {
    for (const fn of ['x', null, 42, undefined]) {
      const err = await db.transaction(fn as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(/needs a function/);
    }
  });

  it('createUserDb with a schema not made by defineSchema', async () => {
    for (const bogus of [{ projects: { fields: {}, primaryKey: ['id'] } }, { tables: {} }, 'schema', 42]) {
      const err = await createUserDb({ ...freshEnv(), schema: bogus as never }).then(
        async (opened) => {
          await opened.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SchemaError);
      expect((err as Error).message).toMatch(/defineSchema/);
    }
  });

  it('defineSchema refuses table names PostgreSQL cannot store', () => {
    expect(() => defineSchema({ 'a\u0000': { fields: { id: z.string() }, primaryKey: ['id'] } })).toThrow(
      SchemaError,
    );
  });
});

describe('accepted input', () => {
  it('strings over 1 MB are stored and read back', async () => {
    const big = 'x'.repeat(1024 * 1024 + 17);
    await free().insert({ id: 'big', any: big });
    expect((await free().get('big'))?.any).toHaveLength(big.length);
    expect((await rawAll(env, 'outbox')).length).toBeGreaterThan(0);
    await free().delete('big');
  });

  it('keys containing "/" "~" and "__proto__" are ordinary keys', async () => {
    for (const id of ['a/b', 'c~d', '__proto__']) await free().insert({ id, num: 1 });
    expect((await free().get('a/b'))?.id).toBe('a/b');
    expect((await free().get('__proto__'))?.id).toBe('__proto__');
    await free().update('c~d', { num: 2 });
    expect((await free().get('c~d'))?.num).toBe(2);
    for (const id of ['a/b', 'c~d', '__proto__']) await free().delete(id);
  });
});
