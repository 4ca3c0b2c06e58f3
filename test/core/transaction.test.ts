import { afterEach, describe, expect, it } from 'vitest';
import { localStore } from '../../src/api/internal.js';
import { DuplicateKeyError, type UserDb } from '../../src/index.js';
import { freshEnv, openTyped, project, record, type TestSchema } from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

async function typed(): Promise<UserDb<TestSchema>> {
  const db = await openTyped(freshEnv());
  open.push(db);
  return db;
}

const outbox = (db: UserDb<TestSchema>) => localStore(db as unknown as UserDb).readOutbox();

describe('db.transaction', () => {
  it('commits all writes as one outbox row and returns the callback result', async () => {
    const db = await typed();
    const before = (await outbox(db)).length;
    const result = await db.transaction(async () => {
      await db.table('projects').insert(project('p1'));
      await db.table('projects').update('p1', { title: 'x' });
      await db.table('members').insert({ team: 't', user: 1 });
      return 42;
    });
    expect(result).toBe(42);
    const entries = await outbox(db);
    expect(entries.length).toBe(before + 1);
    expect(entries.at(-1)?.ops.map((o) => o.op)).toEqual(['add', 'test', 'replace', 'add']);
    expect((await db.table('projects').get('p1'))?.title).toBe('x');
  });

  it('reads inside the transaction see its pending writes; subscribers do not', async () => {
    const db = await typed();
    const rec = record(db.table('projects').query().observe());
    await db.transaction(async () => {
      await db.table('projects').insert(project('p1'));
      expect(await db.table('projects').get('p1')).toMatchObject({ id: 'p1' });
      expect(await db.table('projects').query().count()).toBe(1);
      expect((await db.export()).tables.projects?.rows).toHaveLength(1);
      expect(rec.values).toHaveLength(1);
      expect(rec.values[0]).toEqual([]);
    });
    expect(rec.values).toHaveLength(2);
    rec.stop();
  });

  it('discards everything when the callback throws halfway', async () => {
    const db = await typed();
    await db.table('projects').insert(project('p0'));
    const exported = await db.export();
    const entries = await outbox(db);
    const rec = record(db.table('projects').query().observe());
    const boom = new Error('boom');
    await expect(
      db.transaction(async () => {
        await db.table('projects').insert(project('p1'));
        await db.table('projects').update('p0', { title: 'changed' });
        await db.createTable('extra', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] });
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await db.export()).toEqual(exported);
    expect(await outbox(db)).toEqual(entries);
    expect(rec.values).toHaveLength(1);
    rec.stop();
  });

  it('a failed write inside leaves the transaction as it was; uncaught it aborts everything', async () => {
    const db = await typed();
    await db.transaction(async () => {
      await db.table('projects').insert(project('p1'));
      await expect(db.table('projects').insert(project('p1'))).rejects.toBeInstanceOf(DuplicateKeyError);
      await db.table('projects').insert(project('p2'));
    });
    expect(await db.table('projects').query().count()).toBe(2);
    await expect(
      db.transaction(async () => {
        await db.table('projects').insert(project('p3'));
        await db.table('projects').insert(project('p1'));
      }),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await db.table('projects').get('p3')).toBeUndefined();
  });

  it('serializes transactions in call order; writes issued while one is open belong to it', async () => {
    const db = await typed();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => {
      started = r;
    });
    const first = db.transaction(async () => {
      order.push('first:start');
      await db.table('projects').insert(project('p1'));
      started();
      await gate;
      order.push('first:end');
    });
    const second = db.transaction(async () => {
      order.push('second:start');
      expect(await db.table('projects').get('p1')).toBeDefined();
    });
    await firstStarted;
    // a write issued from elsewhere while `first` is open joins it
    const joined = db.table('projects').insert(project('p9'));
    release();
    await Promise.all([first, second, joined]);
    expect(order).toEqual(['first:start', 'first:end', 'second:start']);
    const last = (await outbox(db)).at(-1);
    expect(last?.ops.map((o) => o.path)).toEqual(['/tables/projects/rows/p1', '/tables/projects/rows/p9']);
  });

  it('runs a nested transaction inside the open one, undoing only its writes when it throws', async () => {
    const db = await typed();
    await db.transaction(async () => {
      await db.table('projects').insert(project('p1'));
      await db
        .transaction(async () => {
          await db.table('projects').insert(project('p2'));
          throw new Error('inner');
        })
        .catch(() => undefined);
      await db.transaction(async () => {
        await db.table('projects').insert(project('p3'));
      });
    });
    const ids = (await db.table('projects').query().orderBy('id').toArray()).map((r) => r.id);
    expect(ids).toEqual(['p1', 'p3']);
  });

  it('writes nothing for an empty transaction', async () => {
    const db = await typed();
    const n = (await outbox(db)).length;
    await db.transaction(async () => {
      await db.table('projects').query().toArray();
    });
    expect((await outbox(db)).length).toBe(n);
  });
});
