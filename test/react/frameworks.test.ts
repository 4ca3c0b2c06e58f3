// @vitest-environment happy-dom
/**
 * userdb's observables in other frameworks, exactly as docs/frameworks.md shows them. The Vue, Svelte
 * and Solid components are read from the doc as they are, compiled with each framework's own
 * compiler (@vue/compiler-sfc, svelte/compiler, babel-preset-solid), mounted in happy-dom, and
 * checked to follow writes. Below them: Vue's `useObservable` (@vueuse/rxjs), Svelte stores,
 * Solid's `from` as plain functions, and Angular's `async` pipe (whose input type is rxjs'
 * `Subscribable`, checked at the type level).
 *
 * Runs in vitest's `frameworks` project (vitest.config.ts): happy-dom, with the `browser` export
 * condition, so that `svelte` and `solid-js/web` are their DOM builds.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformAsync } from '@babel/core';
import { useObservable } from '@vueuse/rxjs';
import { transform } from 'esbuild';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Observable, Subscribable } from 'rxjs';
import { createComponent, createRoot, from } from 'solid-js';
import { render } from 'solid-js/web';
import { flushSync, mount as mountSvelte, unmount as unmountSvelte } from 'svelte';
import { compile as compileSvelte } from 'svelte/compiler';
import { derived, get, type Readable } from 'svelte/store';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { createApp, effectScope, watch } from 'vue';
import { compileScript, parse as parseSfc } from 'vue/compiler-sfc';
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

// The components of docs/frameworks.md --------------------------------------------------------

// (happy-dom's global URL is not Node's: paths from the string)
const here = dirname(fileURLToPath(import.meta.url));
const doc = readFileSync(join(here, '..', '..', 'docs', 'frameworks.md'), 'utf8');

/** The first code block of `lang` in the doc's section `heading` (a `## ` line starting with it). */
function docBlock(heading: string, lang: string): string {
  const start = doc.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`docs/frameworks.md has no section "${heading}"`);
  const fence = doc.indexOf(`\n\`\`\`${lang}\n`, start);
  const next = doc.indexOf('\n## ', start + 1);
  if (fence < 0 || (next >= 0 && fence > next)) throw new Error(`no ${lang} block in "${heading}"`);
  const body = fence + lang.length + 5;
  return doc.slice(body, doc.indexOf('\n```', body) + 1);
}

/** The doc's schema for the components (projects and tasks, as in its first block). */
const docSchema = defineSchema({
  projects: {
    fields: {
      id: z.string(),
      title: z.string(),
      status: z.string().default('open'),
      created_at: z.iso.datetime(),
    },
    primaryKey: ['id'],
  },
  tasks: {
    fields: { id: z.string(), project_id: z.string(), title: z.string(), done: z.boolean().default(false) },
    primaryKey: ['id'],
  },
});

/** A temporary directory next to this file (so bare imports resolve), holding the compiled components and `./db`. */
let out: string;
/** The doc's `./db` module: its `db` is the current test's database. */
let dbModule: { use(db: unknown): void };
let docDb: UserDb<typeof docSchema.definition>;

beforeAll(async () => {
  out = mkdtempSync(join(here, '.compiled-'));
  writeFileSync(
    join(out, 'db.ts'),
    'export let db: unknown;\nexport function use(next: unknown): void {\n  db = next;\n}\n',
  );
  dbModule = await import(join(out, 'db.ts'));

  // Vue: the SFC compiler, template inlined into setup(); then TypeScript stripped
  const sfc = parseSfc(docBlock('Vue', 'vue'), { filename: 'Tasks.vue' });
  if (sfc.errors.length > 0) throw sfc.errors[0];
  const script = compileScript(sfc.descriptor, { id: 'tasks', inlineTemplate: true });
  writeFileSync(join(out, 'Tasks.vue.js'), (await transform(script.content, { loader: 'ts' })).code);

  // Svelte: the Svelte 5 compiler (it strips TypeScript itself)
  const svelte = compileSvelte(docBlock('Svelte', 'svelte'), {
    filename: 'Tasks.svelte',
    generate: 'client',
  });
  writeFileSync(join(out, 'Tasks.svelte.js'), svelte.js.code);

  // Solid: TypeScript stripped (JSX kept), then Solid's JSX compiler
  const stripped = await transform(docBlock('Solid', 'tsx'), { loader: 'tsx', jsx: 'preserve' });
  const solid = await transformAsync(stripped.code, {
    presets: [['babel-preset-solid', { generate: 'dom' }]],
    filename: 'Tasks.jsx',
    babelrc: false,
    configFile: false,
  });
  writeFileSync(join(out, 'Tasks.solid.js'), solid?.code ?? '');
}, 60_000);

afterAll(() => {
  if (out !== undefined) rmSync(out, { recursive: true, force: true });
});

beforeEach(async () => {
  docDb = await createUserDb({
    userId: `doc_${n}`,
    schema: docSchema,
    indexedDB: new IDBFactory(),
    IDBKeyRange,
  });
  dbModule.use(docDb);
  await docDb.table('projects').insert({ id: 'p1', title: 'Launch', created_at: new Date().toISOString() });
  await docDb.table('tasks').insert({ id: 't1', project_id: 'p1', title: 'Write docs' });
  await docDb.table('tasks').insert({ id: 't9', project_id: 'p2', title: 'Another project' });
});
afterEach(() => docDb.close());

/** A fresh container in the document. */
function container(): HTMLElement {
  const el = document.createElement('div');
  document.body.appendChild(el);
  return el;
}

const items = (el: HTMLElement) => [...el.querySelectorAll('li')].map((li) => li.textContent?.trim());

/** Writes that every component must show: an insert, a rename, a delete (and a task of another project). */
async function writeAndExpect(el: HTMLElement, flush: () => void = () => undefined): Promise<void> {
  await vi.waitFor(() => {
    flush();
    expect(items(el)).toEqual(['Write docs']);
  });
  await docDb.table('tasks').insert({ id: 't2', project_id: 'p1', title: 'Ship' });
  await docDb.table('tasks').insert({ id: 't3', project_id: 'p2', title: 'Not this project' });
  await vi.waitFor(() => {
    flush();
    expect(items(el)?.sort()).toEqual(['Ship', 'Write docs']);
  });
  await docDb.table('tasks').update('t1', { title: 'Write the docs' });
  await docDb.table('tasks').delete('t2');
  await vi.waitFor(() => {
    flush();
    expect(items(el)).toEqual(['Write the docs']);
  });
}

/** After unmounting: the list is gone and a write renders nothing (the live query was closed). */
async function expectUnsubscribed(el: HTMLElement): Promise<void> {
  expect(items(el)).toEqual([]);
  await docDb.table('tasks').insert({ id: 't4', project_id: 'p1', title: 'After unmount' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(items(el)).toEqual([]);
}

describe('the components of docs/frameworks.md, mounted', () => {
  it('Vue: <script setup> with useObservable renders the tasks and follows writes', async () => {
    const { default: Tasks } = await import(join(out, 'Tasks.vue.js'));
    const el = container();
    const app = createApp(Tasks, { projectId: 'p1' });
    app.mount(el);
    await writeAndExpect(el);
    // a local-only database is offline: the component's status line shows it
    expect(el.querySelector('p')?.textContent).toBe('offline · 0 pending');
    app.unmount();
    await expectUnsubscribed(el);
  });

  it('Svelte: $store on a live query renders the tasks and follows writes', async () => {
    const { default: Tasks } = await import(join(out, 'Tasks.svelte.js'));
    const el = container();
    const component = mountSvelte(Tasks, { target: el, props: { projectId: 'p1' } });
    await writeAndExpect(el, flushSync);
    expect(el.querySelector('p')?.textContent).toBe('offline · 0 pending');
    await unmountSvelte(component);
    await expectUnsubscribed(el);
  });

  it('Solid: from() in <For> renders the tasks and follows writes', async () => {
    const { Tasks } = await import(join(out, 'Tasks.solid.js'));
    const el = container();
    const dispose = render(() => createComponent(Tasks, { projectId: 'p1' }), el);
    await writeAndExpect(el);
    dispose();
    await expectUnsubscribed(el);
  });
});

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
