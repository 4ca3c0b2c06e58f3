import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, type UserDb } from '../../src/index.js';
import { freshEnv, openTyped, openUntyped, project, record, type TestSchema, waitFor } from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

async function typed(env = freshEnv()): Promise<UserDb<TestSchema>> {
  const db = await openTyped(env);
  open.push(db);
  return db;
}

describe('query.observe()', () => {
  it('emits the current result at once on subscribe', async () => {
    const db = await typed();
    await db.table('projects').insert(project('p1'));
    const rec = record(db.table('projects').query().observe());
    expect(rec.values).toHaveLength(1);
    expect(rec.values[0]?.map((r) => r.id)).toEqual(['p1']);
    rec.stop();
  });

  it('emits after each change, keeping the identity of unchanged rows', async () => {
    const db = await typed();
    const t = db.table('projects');
    await t.insert(project('p1'));
    await t.insert(project('p2'));
    const rec = record(t.query().orderBy('id').observe());
    await t.update('p2', { title: 'changed' });
    expect(rec.values).toHaveLength(2);
    const [before, after] = rec.values as unknown as [readonly object[], readonly object[]];
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[1]).toMatchObject({ title: 'changed' });
    rec.stop();
  });

  it('does not emit when a commit leaves the result unchanged', async () => {
    const db = await typed();
    const t = db.table('projects');
    await t.insert(project('p1'));
    const open$ = t.query().where('status', '==', 'open').observe();
    const rec = record(open$);
    await t.insert(project('p2', { status: 'closed' })); // same table, not in the result
    await t.update('p2', { title: 'still closed' });
    await db.table('members').insert({ team: 'x', user: 1 }); // other table
    expect(rec.values).toHaveLength(1);
    await t.update('p2', { status: 'open' });
    expect(rec.values).toHaveLength(2);
    rec.stop();
  });

  it('re-evaluates only queries that read a changed table', async () => {
    const db = await typed();
    let evaluations = 0;
    const spy = db.table('members').query().observe();
    const sub = spy.subscribe(() => {
      evaluations++;
    });
    await db.table('projects').insert(project('p1'));
    await db.table('projects').update('p1', { title: 'x' });
    expect(evaluations).toBe(1);
    sub.unsubscribe();
  });

  it('emits once per transaction, with the final state', async () => {
    const db = await typed();
    const t = db.table('projects');
    const rec = record(t.query().observe());
    await db.transaction(async () => {
      await t.insert(project('p1'));
      await t.insert(project('p2'));
      await t.update('p1', { title: 'x' });
      await db.table('members').insert({ team: 'a', user: 1 });
    });
    expect(rec.values).toHaveLength(2);
    expect(rec.values[1]?.map((r) => [r.id, r.title])).toEqual([
      ['p1', 'x'],
      ['p2', 'Project p2'],
    ]);
    rec.stop();
  });

  it('sends an error for an unknown table or field', async () => {
    const db = await openUntyped(freshEnv());
    open.push(db);
    const err = await waitFor(db.table('nope').query().observe(), () => true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
  });

  it('completes when the database closes', async () => {
    const db = await openTyped(freshEnv());
    let completed = false;
    db.table('projects')
      .query()
      .observe()
      .subscribe({ complete: () => (completed = true) });
    await db.close();
    expect(completed).toBe(true);
  });
});

describe('table.observe(key)', () => {
  it('emits the row, then each new version, and undefined when deleted', async () => {
    const db = await typed();
    const t = db.table('projects');
    const rec = record(t.observe('p1'));
    expect(rec.values).toEqual([undefined]);
    await t.insert(project('p1'));
    await t.insert(project('p2')); // another row: no emission
    await t.update('p1', { title: 'x' });
    await t.delete('p1');
    expect(rec.values.map((r) => r?.title)).toEqual([undefined, 'Project p1', 'x', undefined]);
    rec.stop();
  });

  it('works with composite keys', async () => {
    const db = await typed();
    const rec = record(db.table('members').observe(['t', 1]));
    await db.table('members').insert({ team: 't', user: 1, role: 'admin' });
    expect(rec.values.at(-1)).toEqual({ team: 't', user: 1, role: 'admin' });
    rec.stop();
  });
});

describe('two instances on one IndexedDB (two tabs)', () => {
  it("each sees the other's committed writes, in one emission per commit", async () => {
    const env = freshEnv();
    const a = await typed(env);
    const b = await typed(env);
    const recB = record(b.table('projects').query().orderBy('id').observe());
    await a.table('projects').insert(project('p1'));
    const seen = await waitFor(b.table('projects').query().observe(), (rows) => rows.length === 1);
    expect(seen[0]).toMatchObject({ id: 'p1' });
    await a.transaction(async () => {
      await a.table('projects').insert(project('p2'));
      await a.table('projects').insert(project('p3'));
    });
    await waitFor(b.table('projects').query().observe(), (rows) => rows.length === 3);
    expect(recB.values.map((rows) => rows.length)).toEqual([0, 1, 3]);
    // and the other way round
    await b.table('projects').update('p1', { title: 'from b' });
    const row = await waitFor(a.table('projects').observe('p1'), (r) => r?.title === 'from b');
    expect(row?.title).toBe('from b');
    expect(await a.export()).toEqual(await b.export());
    recB.stop();
  });

  it('in one process, the other instance has emitted by the time the write resolves', async () => {
    const env = freshEnv();
    const a = await typed(env);
    const b = await typed(env);
    const rec = record(b.table('projects').query().observe());
    await a.table('projects').insert(project('p1'));
    expect(rec.values.map((rows) => rows.length)).toEqual([0, 1]);
    await a.transaction(async () => {
      await a.table('projects').update('p1', { title: 'x' });
      await a.table('projects').insert(project('p2'));
    });
    expect(rec.values.map((rows) => rows.length)).toEqual([0, 1, 2]);
    expect(rec.values[2]?.[0]?.title).toBe('x');
    rec.stop();
  });

  it('keeps both writes when two instances write concurrently', async () => {
    const env = freshEnv();
    const a = await typed(env);
    const b = await typed(env);
    await Promise.all([a.table('projects').insert(project('pa')), b.table('projects').insert(project('pb'))]);
    await waitFor(a.table('projects').query().observe(), (rows) => rows.length === 2);
    await waitFor(b.table('projects').query().observe(), (rows) => rows.length === 2);
    expect(await a.export()).toEqual(await b.export());
  });
});

describe('two instances writing the same row at once', () => {
  it('converge on base + outbox replayed (the later write wins)', async () => {
    const env = freshEnv();
    const a = await typed(env);
    const b = await typed(env);
    await Promise.all([
      a.table('projects').insert(project('p1', { title: 'from a' })),
      b.table('projects').insert(project('p1', { title: 'from b' })),
    ]);
    // a third instance opened now reads the durable truth: base + outbox
    const c = await typed(env);
    const truth = (await c.table('projects').get('p1'))?.title;
    expect(['from a', 'from b']).toContain(truth);
    await waitFor(a.table('projects').observe('p1'), (r) => r?.title === truth);
    await waitFor(b.table('projects').observe('p1'), (r) => r?.title === truth);
    expect(await a.export()).toEqual(await c.export());
    expect(await b.export()).toEqual(await c.export());
  });
});
