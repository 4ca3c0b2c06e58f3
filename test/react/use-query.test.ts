// @vitest-environment happy-dom
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { act, createElement, type ReactNode } from 'react';
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { z } from 'zod';
import { createUserDb, defineSchema, type SyncStatus, type UserDb } from '../../src/index.js';
import { ObservableStore, type ReleaseScheduler, useQuery, useSyncStatus } from '../../src/react/index.js';
import { Boundary, type Mounted, mount, RenderLog } from './harness.js';

/** An observable over a BehaviorSubject that counts its active subscriptions. */
function counted<T>(initial: T) {
  const subject = new BehaviorSubject<T>(initial);
  let active = 0;
  let total = 0;
  const source = new Observable<T>((subscriber) => {
    active++;
    total++;
    const sub = subject.subscribe(subscriber);
    return () => {
      active--;
      sub.unsubscribe();
    };
  });
  return {
    source,
    next: (v: T) => subject.next(v),
    get active() {
      return active;
    },
    get total() {
      return total;
    },
  };
}

function Show<T>(props: { source: Observable<T>; log: RenderLog<T | undefined>; show?: (v: T) => string }) {
  const value = useQuery(props.source);
  props.log.record(value);
  return value === undefined ? 'none' : (props.show?.(value) ?? String(value));
}

function ByKey(props: { k: string; tick: number; factory: (k: string) => Observable<string> }) {
  const v = useQuery(() => props.factory(props.k), [props.k]);
  return `${v} #${props.tick}`;
}

function Once(props: { tick: number; factory: () => Observable<string> }) {
  return `${useQuery(props.factory)} ${props.tick}`;
}

const schema = defineSchema({
  projects: {
    fields: { id: z.string(), title: z.string(), status: z.enum(['open', 'closed']) },
    primaryKey: ['id'],
  },
  tasks: { fields: { id: z.string(), title: z.string() }, primaryKey: ['id'] },
});
type Db = UserDb<typeof schema.definition>;

function OpenProjects(props: { db: Db; log: RenderLog<unknown> }) {
  const rows = useQuery(
    () => props.db.table('projects').query().where('status', '==', 'open').orderBy('id').observe(),
    [props.db],
  );
  props.log.record(rows);
  return (rows ?? []).map((r) => r.title).join(',');
}

let counter = 0;
const open = (): Promise<Db> =>
  createUserDb({ userId: `react_${++counter}`, schema, indexedDB: new IDBFactory(), IDBKeyRange });

interface Status {
  online: boolean;
  pendingCount: number;
}

function Badge(props: { db: { status$: Observable<Status> }; log: RenderLog<Status | undefined> }) {
  const s = useSyncStatus(props.db);
  props.log.record(s);
  return s === undefined ? '' : s.online ? `${s.pendingCount} pending` : 'offline';
}

function Probe(props: { hook: () => unknown; out: { value: unknown } }) {
  props.out.value = props.hook();
  return null;
}

/** Renders `hook` once in a component and returns what it returned. */
function renderHookValue<T>(hook: () => T): T {
  const out = { value: undefined as unknown };
  const m = mount(createElement(Probe, { hook, out }));
  m.unmount();
  return out.value as T;
}

const flushMicrotasks = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

let mounted: Mounted | undefined;
afterEach(() => {
  mounted?.unmount();
  mounted = undefined;
  vi.restoreAllMocks();
});

describe('useQuery', () => {
  it('has the value of a synchronously emitting source on the first render, rendering once', () => {
    const src = counted(1);
    const log = new RenderLog<number | undefined>();
    mounted = mount(createElement(Show<number>, { source: src.source, log }));
    expect(log.values).toEqual([1]);
    expect(mounted.text()).toBe('1');
    expect(src.active).toBe(1);
    expect(src.total).toBe(1);
  });

  it('renders once per new value and not at all for the same reference', () => {
    const rows = [{ id: 'a' }];
    const src = counted<readonly { id: string }[]>(rows);
    const log = new RenderLog<readonly { id: string }[] | undefined>();
    mounted = mount(
      createElement(Show<readonly { id: string }[]>, {
        source: src.source,
        log,
        show: (v) => v.map((r) => r.id).join(','),
      }),
    );
    mounted.render(
      createElement(Show<readonly { id: string }[]>, {
        source: src.source,
        log,
        show: (v) => v.map((r) => r.id).join(','),
      }),
    );
    const rendersBefore = log.count;
    act(() => src.next(rows));
    expect(log.count).toBe(rendersBefore);
    const next = [...rows, { id: 'b' }];
    act(() => src.next(next));
    expect(log.count).toBe(rendersBefore + 1);
    expect(log.last).toBe(next);
    expect(mounted.text()).toBe('a,b');
  });

  it('is undefined until an asynchronous source emits', () => {
    const subject = new Subject<string>();
    const log = new RenderLog<string | undefined>();
    mounted = mount(createElement(Show<string>, { source: subject.asObservable(), log }));
    expect(mounted.text()).toBe('none');
    act(() => subject.next('hello'));
    expect(mounted.text()).toBe('hello');
    expect(log.values).toEqual([undefined, 'hello']);
  });

  it('calls a factory again only when deps change, and closes the previous subscription', () => {
    const sources = new Map<string, ReturnType<typeof counted<string>>>();
    const factory = vi.fn((key: string) => {
      const src = counted(`value ${key}`);
      sources.set(key, src);
      return src.source;
    });
    mounted = mount(createElement(ByKey, { k: 'a', tick: 1, factory }));
    mounted.render(createElement(ByKey, { k: 'a', tick: 2, factory }));
    expect(factory).toHaveBeenCalledTimes(1);
    expect(mounted.text()).toBe('value a #2');
    mounted.render(createElement(ByKey, { k: 'b', tick: 3, factory }));
    expect(factory).toHaveBeenCalledTimes(2);
    expect(mounted.text()).toBe('value b #3');
    return flushMicrotasks().then(() => {
      expect(sources.get('a')?.active).toBe(0);
      expect(sources.get('b')?.active).toBe(1);
    });
  });

  it('calls a factory without deps once per component', () => {
    const factory = vi.fn(() => counted('x').source);
    mounted = mount(createElement(Once, { tick: 1, factory }));
    mounted.render(createElement(Once, { tick: 2, factory }));
    mounted.render(createElement(Once, { tick: 3, factory }));
    expect(factory).toHaveBeenCalledTimes(1);
    expect(mounted.text()).toBe('x 3');
  });

  it('unsubscribes when the component unmounts', async () => {
    const src = counted(1);
    const m = mount(
      createElement(Show<number>, { source: src.source, log: new RenderLog<number | undefined>() }),
    );
    expect(src.active).toBe(1);
    m.unmount();
    await flushMicrotasks();
    expect(src.active).toBe(0);
  });

  it('shares nothing between components but shows each the same value (no tearing)', () => {
    const src = counted(1);
    const log1 = new RenderLog<number | undefined>();
    const log2 = new RenderLog<number | undefined>();
    mounted = mount(
      createElement('div', null, [
        createElement(Show<number>, { key: 1, source: src.source, log: log1 }),
        createElement(Show<number>, { key: 2, source: src.source, log: log2 }),
      ]),
    );
    act(() => src.next(2));
    expect(mounted.text()).toBe('22');
    expect(log1.values).toEqual([1, 2]);
    expect(log2.values).toEqual([1, 2]);
  });

  it('in Strict Mode keeps one subscription while mounted and none after unmount', async () => {
    const src = counted(1);
    const log = new RenderLog<number | undefined>();
    const m = mount(createElement(Show<number>, { source: src.source, log }), { strict: true });
    await flushMicrotasks();
    expect(src.active).toBe(1);
    expect(src.total).toBe(1);
    act(() => src.next(2));
    expect(m.text()).toBe('2');
    m.unmount();
    await flushMicrotasks();
    expect(src.active).toBe(0);
  });

  it('throws the source error to the nearest error boundary', () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const subject = new BehaviorSubject(1);
    const log = new RenderLog<number | undefined>();
    mounted = mount(
      createElement(Boundary, null, createElement(Show<number>, { source: subject, log })) as ReactNode,
    );
    expect(mounted.text()).toBe('1');
    act(() => subject.error(new Error('query failed')));
    expect(mounted.text()).toBe('caught: query failed');
  });

  it('keeps the last value of a completed source', () => {
    const subject = new BehaviorSubject('final');
    mounted = mount(
      createElement(Show<string>, { source: subject, log: new RenderLog<string | undefined>() }),
    );
    act(() => subject.complete());
    expect(mounted.text()).toBe('final');
  });
});

describe('useQuery with userdb live queries', () => {
  it('renders the rows at once, once per changing commit, and never for commits that leave them as they were', async () => {
    const db = await open();
    await db.table('projects').insert({ id: 'p1', title: 'One', status: 'open' });
    await db.table('projects').insert({ id: 'p2', title: 'Two', status: 'closed' });
    const log = new RenderLog<unknown>();
    mounted = mount(createElement(OpenProjects, { db, log }));
    expect(mounted.text()).toBe('One');
    expect(log.count).toBe(1);

    await act(() => db.table('tasks').insert({ id: 't1', title: 'unrelated table' }));
    await act(() => db.table('projects').update('p2', { title: 'Still closed' }));
    expect(log.count).toBe(1);

    await act(() => db.table('projects').insert({ id: 'p3', title: 'Three', status: 'open' }));
    expect(mounted.text()).toBe('One,Three');
    expect(log.count).toBe(2);

    await act(() =>
      db.transaction(async () => {
        await db.table('projects').update('p1', { title: 'Uno' });
        await db.table('projects').update('p3', { title: 'Tres' });
      }),
    );
    expect(mounted.text()).toBe('Uno,Tres');
    expect(log.count).toBe(3);
    mounted.unmount();
    mounted = undefined;
    await db.close();
  });
});

describe('types', () => {
  it('infers the row type of a live query and the status type of a database', async () => {
    const db = await open();
    const rows = renderHookValue(() =>
      useQuery(() => db.table('projects').query().orderBy('id').observe(), [db]),
    );
    expectTypeOf(rows).toEqualTypeOf<
      { readonly id: string; readonly title: string; readonly status: 'open' | 'closed' }[] | undefined
    >();
    const status = renderHookValue(() => useSyncStatus(db));
    expectTypeOf(status).toEqualTypeOf<SyncStatus | undefined>();
    // A local-only database has one constant status.
    expect(status).toMatchObject({ pendingCount: 0, leader: false });
    await db.close();
  });
});

describe('useSyncStatus', () => {
  it('follows db.status$ and renders only on change', () => {
    const status$ = new BehaviorSubject<Status>({ online: true, pendingCount: 0 });
    const db = { status$ };
    const log = new RenderLog<Status | undefined>();
    mounted = mount(createElement(Badge, { db, log }));
    expect(mounted.text()).toBe('0 pending');
    act(() => status$.next(status$.value));
    expect(log.count).toBe(1);
    act(() => status$.next({ online: false, pendingCount: 2 }));
    expect(mounted.text()).toBe('offline');
    expect(log.count).toBe(2);
  });
});

describe('ObservableStore', () => {
  function manualScheduler() {
    const due: (() => void)[] = [];
    const scheduler: ReleaseScheduler = {
      schedule(fn) {
        due.push(fn);
        return () => {
          const i = due.indexOf(fn);
          if (i >= 0) due.splice(i, 1);
        };
      },
    };
    const runAll = (): void => {
      for (const fn of due.splice(0)) fn();
    };
    return { scheduler, runAll, pending: () => due.length };
  }

  it('closes a subscription opened by a render that never mounted', () => {
    const src = counted('v');
    const { scheduler, runAll } = manualScheduler();
    const store = new ObservableStore(src.source, scheduler);
    expect(store.getSnapshot()).toBe('v');
    expect(src.active).toBe(1);
    runAll();
    expect(src.active).toBe(0);
    expect(store.connected).toBe(false);
  });

  it('hands the subscription opened by a render to the first listener (no second subscription)', () => {
    const src = counted('v');
    const { scheduler, pending } = manualScheduler();
    const store = new ObservableStore(src.source, scheduler);
    store.getSnapshot();
    const listener = vi.fn();
    store.subscribe(listener);
    expect(pending()).toBe(0);
    expect(src.total).toBe(1);
    src.next('w');
    expect(listener).toHaveBeenCalledTimes(1);
    expect(store.getSnapshot()).toBe('w');
  });

  it('re-subscribes for fresh data after it was released', async () => {
    const src = counted(1);
    const store = new ObservableStore(src.source);
    const off = store.subscribe(() => undefined);
    off();
    await flushMicrotasks();
    expect(src.active).toBe(0);
    src.next(2);
    store.subscribe(() => undefined);
    expect(store.getSnapshot()).toBe(2);
    expect(src.total).toBe(2);
  });
});
