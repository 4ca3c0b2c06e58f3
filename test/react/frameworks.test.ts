// @vitest-environment happy-dom
/**
 * userdb's observables in other frameworks, exactly as docs/frameworks.md shows them: Vue's
 * `useObservable` (@vueuse/rxjs), Svelte stores, Solid's `from`, and Angular's `async` pipe (whose
 * input type is rxjs' `Subscribable`, checked at the type level).
 */
import { useObservable } from '@vueuse/rxjs';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Observable, Subscribable } from 'rxjs';
import { createRoot, from } from 'solid-js';
import { derived, get, type Readable } from 'svelte/store';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { effectScope, watch } from 'vue';
import { z } from 'zod';
import { createUserDb, defineSchema, type UserDb } from '../../src/index.js';

const schema = defineSchema({
  tasks: {
    fields: { id: z.string(), title: z.string(), done: z.boolean().default(false) },
    primaryKey: ['id'],
  },
});
type Db = UserDb<typeof schema.definition>;
type Task = { id: string; title: string; done: boolean };

let db: Db;
let n = 0;
beforeEach(async () => {
  db = await createUserDb({ userId: `fw_${++n}`, schema, indexedDB: new IDBFactory(), IDBKeyRange });
  await db.table('tasks').insert({ id: 't1', title: 'First' });
});
afterEach(() => db.close());

const titles = (rows: readonly Task[] | undefined) => (rows ?? []).map((r) => r.title);

describe('Vue: useObservable (@vueuse/rxjs)', () => {
  it('is a ref that follows the live query and unsubscribes with its scope', async () => {
    const scope = effectScope();
    const seen: string[][] = [];
    const rows = scope.run(() => {
      const r = useObservable(db.table('tasks').query().orderBy('title').observe());
      watch(r, (v) => seen.push(titles(v)), { flush: 'sync' });
      return r;
    });
    expect(titles(rows?.value)).toEqual(['First']);
    await db.table('tasks').insert({ id: 't2', title: 'Second' });
    expect(titles(rows?.value)).toEqual(['First', 'Second']);
    scope.stop();
    await db.table('tasks').insert({ id: 't3', title: 'Third' });
    expect(seen).toEqual([['First', 'Second']]);
  });
});

/** The typed adapter docs/frameworks.md shows for TypeScript code (components need none). */
function toReadable<T>(observable: Observable<T>): Readable<T> {
  return {
    subscribe: (run) => {
      const subscription = observable.subscribe(run);
      return () => subscription.unsubscribe();
    },
  };
}

describe('Svelte: an observable is a store', () => {
  it('meets the store contract at run time ($store in components, get())', async () => {
    // What `$tasks` does in a component: Svelte accepts a subscribe() that returns { unsubscribe }.
    const tasks$ = db.table('tasks').query().observe() as unknown as Readable<Task[]>;
    expect(titles(get(tasks$))).toEqual(['First']);
  });

  it('as a typed Readable works with derived() and unsubscribes', async () => {
    const tasks = toReadable(db.table('tasks').query().observe());
    const open = derived(tasks, (rows) => rows.filter((t) => !t.done).length);
    const counts: number[] = [];
    const unsubscribe = open.subscribe((c) => counts.push(c));
    await db.table('tasks').insert({ id: 't2', title: 'Second' });
    await db.table('tasks').update('t1', { done: true });
    unsubscribe();
    await db.table('tasks').insert({ id: 't3', title: 'Third' });
    expect(counts).toEqual([1, 2, 1]);
  });
});

describe('Solid: from()', () => {
  it('is an accessor that follows the live query and unsubscribes on dispose', async () => {
    const { rows, dispose } = createRoot((dispose) => ({
      rows: from(db.table('tasks').query().orderBy('title').observe()),
      dispose,
    }));
    expect(titles(rows())).toEqual(['First']);
    await db.table('tasks').insert({ id: 't2', title: 'Second' });
    expect(titles(rows())).toEqual(['First', 'Second']);
    dispose();
    await db.table('tasks').insert({ id: 't3', title: 'Third' });
    expect(titles(rows())).toEqual(['First', 'Second']);
  });
});

describe('Angular: the async pipe', () => {
  it('accepts a live query (AsyncPipe.transform takes a Subscribable)', () => {
    const tasks$ = db.table('tasks').query().observe();
    expectTypeOf(tasks$).toExtend<Subscribable<Task[]>>();
  });
});
