import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { z } from 'zod';
import { createUserDb, defineSchema, type UserDb } from '../../src/index.js';

export const schema = defineSchema({
  projects: {
    fields: {
      id: z.string(),
      title: z.string(),
      status: z.enum(['open', 'closed']),
      created_at: z.iso.datetime(),
      note: z.string().nullable().optional(),
    },
    primaryKey: ['id'],
  },
  members: {
    fields: { team: z.string(), user: z.int(), role: z.string().default('member') },
    primaryKey: ['team', 'user'],
  },
});

export type TestSchema = typeof schema.definition;

let counter = 0;
/** A unique user id per test, so in-process change notifications of other tests never interfere. */
export function uniqueUser(prefix = 'u'): string {
  counter++;
  return `${prefix}_${process.pid}_${counter}`;
}

export interface Env {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  userId: string;
}

export function freshEnv(): Env {
  return { indexedDB: new IDBFactory(), IDBKeyRange, userId: uniqueUser() };
}

export function openTyped(env: Env): Promise<UserDb<TestSchema>> {
  return createUserDb({ ...env, schema });
}

export function openUntyped(env: Env): Promise<UserDb> {
  return createUserDb({ ...env });
}

export function project(
  id: string,
  extra: Partial<{ title: string; status: 'open' | 'closed'; note: string | null }> = {},
) {
  return {
    id,
    title: extra.title ?? `Project ${id}`,
    status: extra.status ?? ('open' as const),
    created_at: '2025-10-14T00:00:00Z',
    ...(extra.note !== undefined ? { note: extra.note } : {}),
  };
}

/** Resolves with the first value of `source$` that satisfies `predicate`. */
export function waitFor<T>(source$: Observable<T>, predicate: (v: T) => boolean): Promise<T> {
  return firstValueFrom(source$.pipe(filter(predicate)));
}

/** Collects every emission of `source$` until the returned stop function is called. */
export function record<T>(source$: Observable<T>): { values: T[]; stop: () => void } {
  const values: T[] = [];
  const sub = source$.subscribe((v) => values.push(v));
  return { values, stop: () => sub.unsubscribe() };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Opens the user's IndexedDB database directly (no Dexie), runs `fn` in one transaction, closes it. */
export async function raw<T>(
  env: Env,
  storeName: 'meta' | 'outbox' | 'quarantine',
  mode: IDBTransactionMode,
  fn: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const open = env.indexedDB.open(`userdb:${env.userId}`);
  const db = await request(open);
  try {
    const tx = db.transaction(storeName, mode);
    const result = await request(fn(tx.objectStore(storeName)));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    return result;
  } finally {
    db.close();
  }
}

/** Every record of a store, in key order. */
export function rawAll(env: Env, storeName: 'meta' | 'outbox' | 'quarantine'): Promise<unknown[]> {
  return raw(env, storeName, 'readonly', (s) => s.getAll());
}
