/**
 * The cost of a write must not depend on the document's size. Checked structurally (no timing):
 * at 100k rows a one-field update scans no table, copies no row map, rewrites no base, and stores
 * only its own ops; every other row keeps its identity.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localStore } from '../../src/api/internal.js';
import type { CompactDoc, Json, UserDb } from '../../src/index.js';
import { Overlay, View } from '../../src/query/index.js';
import { type Env, freshEnv, openUntyped, rawAll, record } from './helpers.js';

const N = 100_000;
let env: Env;
let db: UserDb;

beforeAll(async () => {
  env = freshEnv();
  db = await openUntyped(env);
  const rows: Json[][] = [];
  for (let i = 0; i < N; i++) rows.push([`r${i}`, `title ${i}`, i % 7]);
  const doc: CompactDoc = {
    version: 1,
    tables: {
      big: {
        schema: {
          fields: [
            { name: 'id', type: 'string' },
            { name: 'title', type: 'string' },
            { name: 'n', type: 'integer' },
          ],
          primaryKey: ['id'],
        },
        rows,
      },
    },
  };
  await db.import(doc);
}, 120_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await db.close();
});

describe(`writes at ${N} rows`, () => {
  it('scan no table and keep every other row object', async () => {
    const t = db.table('big');
    const before = await t.get('r500');
    const neighbour = await t.get('r501');
    const metaBefore = await rawAll(env, 'meta');
    const scans = [
      vi.spyOn(View.prototype, 'rows'),
      vi.spyOn(View.prototype, 'entries'),
      vi.spyOn(Overlay.prototype, 'rows'),
      vi.spyOn(Overlay.prototype, 'entries'),
      vi.spyOn(View.prototype, 'replaceAll'),
    ];
    await t.update('r500', { title: 'changed' });
    await t.insert({ id: 'new', title: 'x', n: 1 });
    await t.delete('r7');
    await t.upsert({ id: 'r8', title: 'y', n: 2 });
    await db.transaction(async () => {
      await t.update('r9', { n: 100 });
      await t.update('r10', { n: 100 });
    });
    for (const spy of scans) expect(spy).not.toHaveBeenCalled();
    vi.restoreAllMocks();

    const after = await t.get('r500');
    expect(after).not.toBe(before);
    expect(after?.title).toBe('changed');
    expect(await t.get('r501')).toBe(neighbour);
    expect(await rawAll(env, 'meta')).toEqual(metaBefore);
    const last = (await localStore(db).readOutbox()).at(-5);
    expect(last?.ops).toEqual([
      { op: 'test', path: '/tables/big/rows/r500/title', value: 'title 500' },
      { op: 'replace', path: '/tables/big/rows/r500/title', value: 'changed' },
    ]);
  });

  it('notify a live query with a result that shares unchanged rows', async () => {
    const t = db.table('big');
    const rec = record(t.query().where('n', '==', 3).limit(5).observe());
    await t.update('r3', { title: 'three' });
    expect(rec.values).toHaveLength(2);
    const [first, second] = rec.values as unknown as [readonly object[], readonly object[]];
    expect(second[0]).not.toBe(first[0]);
    expect(second.slice(1)).toEqual(first.slice(1));
    second.slice(1).forEach((row, i) => {
      expect(row).toBe(first[i + 1]);
    });
    rec.stop();
  });
});
