/**
 * Declared indexes: bad declarations are typed errors naming table and field (and compile errors
 * where the types can tell), the planner uses an index for `==`, `in`, ranges and `orderBy` and
 * `explain()` says which one and how many rows it read, and indexes follow every kind of change.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { localStore, rebuildView } from '../../src/api/internal.js';
import { createUserDb, defineSchema, NotFoundError, SchemaError, type UserDb } from '../../src/index.js';
import { freshEnv } from './helpers.js';

const fields = {
  id: z.string(),
  status: z.enum(['open', 'review', 'closed']),
  project_id: z.string(),
  priority: z.int(),
  created_at: z.iso.datetime(),
  meta: z.object({ a: z.number() }).nullable(),
  tags: z.array(z.string()),
  extra: z.any(),
};

const schema = defineSchema({
  tasks: {
    fields,
    primaryKey: ['id'],
    indexes: ['status', ['project_id', 'created_at'], ['status', 'priority']],
  },
});

function task(i: number, over: Partial<{ status: 'open' | 'review' | 'closed'; priority: number }> = {}) {
  return {
    id: `t${String(i).padStart(3, '0')}`,
    status: over.status ?? ((['open', 'review', 'closed'] as const)[i % 3] as 'open' | 'review' | 'closed'),
    project_id: `p${i % 4}`,
    priority: over.priority ?? i % 5,
    created_at: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
    meta: null,
    tags: [],
    extra: null,
  };
}

describe('index declarations', () => {
  it('reject unknown fields and fields of type object, array or any, naming table and field', () => {
    const bad = (indexes: unknown, field: string | undefined) => {
      let error: unknown;
      try {
        defineSchema({ tasks: { fields, primaryKey: ['id'], indexes: indexes as ['status'] } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SchemaError);
      expect((error as SchemaError).table).toBe('tasks');
      expect((error as SchemaError).field).toBe(field);
    };
    bad(['nope'], 'nope');
    bad([['status', 'nope']], 'nope');
    bad(['meta'], 'meta');
    bad([['status', 'tags']], 'tags');
    bad(['extra'], 'extra');
    bad([[]], undefined);
    bad([['status', 'status']], 'status');
    bad('status', undefined);
  });

  it('are checked by the compiler against the table fields', () => {
    defineSchema({
      t: { fields: { id: z.string(), n: z.int() }, primaryKey: ['id'], indexes: ['n', ['n', 'id']] },
    });
    // the functions below are never called: their bodies are type checks
    const typeChecks = () => {
      // @ts-expect-error 'm' is not a field of t
      defineSchema({ t: { fields: { id: z.string(), n: z.int() }, primaryKey: ['id'], indexes: ['m'] } });
      // biome-ignore format: the compile error must stay on the line after its directive
      // @ts-expect-error 'm' is not a field of t (compound index)
      defineSchema({ t: { fields: { id: z.string(), n: z.int() }, primaryKey: ['id'], indexes: [['n', 'm']] } });
    };
    expect(typeof typeChecks).toBe('function');
  });
});

describe('indexed queries', () => {
  async function openWith(n: number): Promise<UserDb<typeof schema.definition>> {
    const db = await createUserDb({ ...freshEnv(), schema });
    await db.transaction(async () => {
      for (let i = 0; i < n; i++) await db.table('tasks').insert(task(i));
    });
    return db;
  }

  it('use an index for ==, in, ranges and orderBy, and explain says which and how many rows', async () => {
    const db = await openWith(300);
    const tasks = db.table('tasks');
    try {
      const eq = tasks.query().where('status', '==', 'open');
      expect(await eq.explain()).toEqual({ via: 'index', index: ['status'], touched: 100, rows: 100 });

      const list = tasks.query().where('status', '==', 'open').orderBy('priority', 'desc').limit(10);
      const plan = await list.explain();
      expect(plan.via).toBe('index');
      expect(plan.index).toEqual(['status', 'priority']);
      expect(plan.touched).toBe(10);

      const range = tasks
        .query()
        .where('project_id', '==', 'p1')
        .where('created_at', '>=', task(100).created_at)
        .orderBy('created_at');
      const r = await range.explain();
      expect(r.index).toEqual(['project_id', 'created_at']);
      expect(r.touched).toBe(r.rows);
      expect(r.rows).toBe(50);

      const inQuery = tasks.query().where('status', 'in', ['open', 'closed']);
      expect((await inQuery.explain()).touched).toBe(200);

      // the same rows, in the same order, as a scan that ignores the indexes
      const all = await tasks.query().toArray();
      const expected = all
        .filter((t) => t.status === 'open')
        .map((t, i) => ({ t, i }))
        .sort((a, b) => b.t.priority - a.t.priority || a.i - b.i)
        .slice(0, 10)
        .map((x) => x.t);
      expect(await list.toArray()).toEqual(expected);

      // no usable index: a scan, as before
      expect((await tasks.query().where('priority', '>', 2).explain()).via).toBe('scan');
      // a one-field primary key pinned with ==: a lookup
      expect(await tasks.query().where('id', '==', 't007').explain()).toEqual({
        via: 'primaryKey',
        index: ['id'],
        touched: 1,
        rows: 1,
      });
    } finally {
      await db.close();
    }
  });

  it('follow local writes, rollbacks, pulls and rebuilds', async () => {
    const db = await openWith(30);
    const tasks = db.table('tasks');
    const open = tasks.query().where('status', '==', 'open');
    const ids = async () => (await open.toArray()).map((t) => t.id);
    try {
      expect(await ids()).toHaveLength(10);
      await tasks.update('t001', { status: 'open' });
      await tasks.delete('t000');
      expect(await ids()).toEqual(['t001', ...Array.from({ length: 9 }, (_, i) => task(3 * (i + 1)).id)]);
      await db
        .transaction(async () => {
          await tasks.update('t003', { status: 'closed' });
          // inside the transaction the table is read by a scan and sees the pending write
          expect(await ids()).not.toContain('t003');
          throw new Error('undo');
        })
        .catch(() => undefined);
      expect(await ids()).toContain('t003');
      // a pull: the stored base changes under the view
      const doc = await db.export();
      const rows = (doc.tables.tasks as { rows: unknown[][] }).rows;
      const statusAt = (
        doc.tables.tasks as { schema: { fields: { name: string }[] } }
      ).schema.fields.findIndex((f) => f.name === 'status');
      for (const row of rows) row[statusAt] = 'open';
      const store = localStore(db as unknown as UserDb);
      const { last } = await store.outboxBounds();
      await store.commitPush({
        newBase: await db.export(),
        updatedAt: '2026-01-01T00:00:00.000001+00:00',
        upToSeq: last,
        exact: true,
      });
      await store.replaceBase(doc, '2026-01-01T00:00:00.000002+00:00');
      await rebuildView(db as unknown as UserDb);
      expect(await ids()).toHaveLength(29);
      expect((await open.explain()).touched).toBe(29);
    } finally {
      await db.close();
    }
  });
});

describe('declared indexes at start-up', () => {
  it('are built by the first query that can use them, from the rows of that time, then followed', async () => {
    const env = freshEnv();
    const first = await createUserDb({ ...env, schema });
    await first.transaction(async () => {
      for (let i = 0; i < 30; i++) await first.table('tasks').insert(task(i));
    });
    // the rows become the stored base, as after a push
    const store = localStore(first as unknown as UserDb);
    await store.commitPush({
      newBase: await first.export(),
      updatedAt: '2026-01-01T00:00:00.000001+00:00',
      upToSeq: (await store.outboxBounds()).last,
      exact: true,
    });
    await first.close();

    const db = await createUserDb({ ...env, schema });
    const tasks = db.table('tasks');
    const open = tasks.query().where('status', '==', 'open');
    const byScan = async () =>
      (await tasks.query().toArray()).filter((t) => t.status === 'open').map((t) => t.id);
    try {
      // changes before any query uses the index: writes, a rolled-back transaction, a pull
      await tasks.update('t001', { status: 'open' });
      await tasks.delete('t000');
      await db
        .transaction(async () => {
          await tasks.update('t003', { status: 'closed' });
          throw new Error('undo');
        })
        .catch(() => undefined);
      const doc = await db.export();
      const schemaOf = doc.tables.tasks as { schema: { fields: { name: string }[] }; rows: unknown[][] };
      const statusAt = schemaOf.schema.fields.findIndex((f) => f.name === 'status');
      (schemaOf.rows[4] as unknown[])[statusAt] = 'open';
      const s = localStore(db as unknown as UserDb);
      await s.commitPush({
        newBase: await db.export(),
        updatedAt: '2026-01-01T00:00:00.000002+00:00',
        upToSeq: (await s.outboxBounds()).last,
        exact: true,
      });
      await s.replaceBase(doc, '2026-01-01T00:00:00.000003+00:00');
      await rebuildView(db as unknown as UserDb);
      const expected = await byScan();
      expect(expected).toContain('t001');
      expect(expected).toContain('t005');
      expect(expected).not.toContain('t000');
      expect((await open.toArray()).map((t) => t.id)).toEqual(expected);
      expect(expected).toHaveLength(11);
      expect(await open.explain()).toEqual({ via: 'index', index: ['status'], touched: 11, rows: 11 });
      // and after it was built
      await tasks.update('t006', { status: 'review' });
      await tasks.insert(task(90, { status: 'open' }));
      await db
        .transaction(async () => {
          await tasks.update('t009', { status: 'closed' });
          throw new Error('undo');
        })
        .catch(() => undefined);
      expect((await open.toArray()).map((t) => t.id)).toEqual(await byScan());
      expect((await open.explain()).touched).toBe(11);
    } finally {
      await db.close();
    }
  });
});

describe('db.createIndex (tables created at run time)', () => {
  it('indexes an untyped table in memory, with typed errors for bad fields', async () => {
    const db = await createUserDb({ ...freshEnv() });
    try {
      await db.createTable('notes', {
        fields: [
          { name: 'id', type: 'string' },
          { name: 'pinned', type: 'boolean' },
          { name: 'data', type: 'object' },
        ],
        primaryKey: ['id'],
      });
      const notes = db.table('notes');
      await db.transaction(async () => {
        for (let i = 0; i < 40; i++) await notes.insert({ id: `n${i}`, pinned: i % 4 === 0, data: {} });
      });
      const pinned = notes.query().where('pinned', '==', true);
      expect((await pinned.explain()).via).toBe('scan');
      await db.createIndex('notes', 'pinned');
      expect(await pinned.explain()).toEqual({ via: 'index', index: ['pinned'], touched: 10, rows: 10 });
      await notes.update('n1', { pinned: true });
      expect((await pinned.toArray()).map((n) => n.id)).toContain('n1');
      expect((await pinned.explain()).touched).toBe(11);
      const fails = async (
        p: Promise<void>,
        type: typeof SchemaError | typeof NotFoundError,
        field?: string,
      ) => {
        const e = await p.catch((x: unknown) => x);
        expect(e).toBeInstanceOf(type);
        expect((e as SchemaError).table).toBe(type === NotFoundError ? 'nope' : 'notes');
        if (field !== undefined) expect((e as SchemaError).field).toBe(field);
      };
      await fails(db.createIndex('notes', 'data'), SchemaError, 'data');
      await fails(db.createIndex('notes', ['pinned', 'colour']), SchemaError, 'colour');
      await fails(db.createIndex('nope', 'id'), NotFoundError);
    } finally {
      await db.close();
    }
  });
});
