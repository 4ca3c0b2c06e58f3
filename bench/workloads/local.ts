/**
 * Workloads 1–4, local only (no network): write latency against document size, bulk inserts
 * against raw Dexie, reads at 100k rows, and start-up against `JSON.parse` of the same bytes.
 * Runs on any {@link Backend}: fake-indexeddb in Node, real IndexedDB in Chromium.
 */
import { Dexie } from 'dexie';
import { localStore } from '../../src/api/internal.js';
import { createUserDb, defineSchema, type UserDb } from '../../src/index.js';
import { databaseName, LocalStore } from '../../src/store/index.js';
import { META_BASE } from '../../src/store/records.js';
import type { Backend, Place } from '../lib/backend.js';
import { type Item, keyOf, makeDoc, makeItems, schema, TABLE } from '../lib/data.js';
import { atMost, type Figure, timing } from '../lib/report.js';
import { mulberry32, randInt } from '../lib/rng.js';
import { now, repeat, sleep, summarize, tick } from '../lib/stats.js';

/**
 * The benchmark schema with the index a list UI declares for its list query
 * (`where status == … orderBy priority`): ['status', 'priority'].
 */
const indexedSchema = defineSchema({
  items: { ...schema.definition.items, indexes: [['status', 'priority']] },
});

type Db = UserDb<typeof indexedSchema.definition>;

/** Repeat counts and sizes of the local workloads. */
export interface LocalConfig {
  /** Document sizes of workloads 1 and 4 (rows). The last one is also the size of workload 3. */
  sizes: number[];
  /** Measured one-field updates per size (workload 1), after `writeWarmup` unmeasured ones. */
  writeRuns: (rows: number) => number;
  writeWarmup: number;
  /** Measured updates per size with a 50-row list query open (its re-evaluation is included). */
  listRuns: (rows: number) => number;
  /** Rows of workload 2, and how often the one-transaction insert is repeated. */
  bulkRows: number;
  bulkRuns: number;
  /** Gets and queries of workload 3. */
  getRuns: number;
  queryRuns: number;
  /** Rounds of a write right after a stored push / pull (one write per size per round). */
  afterStoredRuns: number;
  /** Start-ups with pending edits (workload 4): document size (one of `sizes`), edit counts, runs. */
  pendingAt: { rows: number; edits: number[]; runs: number };
  /** Start-ups per size (workload 4). */
  startRuns: (rows: number) => number;
  /** Called with a line of progress. */
  log: (line: string) => void;
}

function label(rows: number): string {
  return rows >= 1000 && rows % 1000 === 0 ? `${rows / 1000}k` : String(rows);
}

async function open(place: Place): Promise<Db> {
  return createUserDb({
    userId: place.userId,
    schema: indexedSchema,
    indexedDB: place.indexedDB,
    IDBKeyRange: place.IDBKeyRange,
  });
}

/** Stores a base document of `rows` rows directly (as a pull would), with an empty outbox. */
async function seed(place: Place, rows: number): Promise<void> {
  const store = await LocalStore.open(place);
  try {
    await store.replaceBase(makeDoc(rows), null);
  } finally {
    store.close();
  }
}

/** The list every UI shows: open items by priority, first page. */
function listQuery(db: Db) {
  return db.table(TABLE).query().where('status', '==', 'open').orderBy('priority', 'desc').limit(50);
}

interface WriteSamples {
  /** Raw Dexie put of one row of the same size (the floor of a one-field update). */
  rawPut: number[];
  resolve: number[];
  emit: number[];
  listResolve: number[];
  listEmit: number[];
}

/**
 * A write right after a stored push, and right after a stored pull, at every size: one database per
 * size open at once, and each round times one write on each of them in turn, so that the sizes are
 * compared under the same conditions (their ratio is the target).
 *
 * - After a push the sync engine stores the new base (base + pushed entries) and deletes the pushed
 *   entries, marked exact: the document is unchanged.
 * - After a pull of another device's one-field change, stored as the delta puller stores it: a log
 *   record after the base, with its keyed ops for the views.
 */
async function afterStored(
  backend: Backend,
  cfg: LocalConfig,
): Promise<Map<number, { afterPush: number[]; afterPull: number[] }>> {
  const titleIndex = Object.keys(schema.definition.items.fields).indexOf('title');
  const dbs = [];
  for (const rows of cfg.sizes) {
    const place = backend.fresh();
    await seed(place, rows);
    const db = await open(place);
    dbs.push({
      rows,
      place,
      db,
      rng: mulberry32(7070 + rows),
      afterPush: [] as number[],
      afterPull: [] as number[],
    });
  }
  try {
    const total = 1 + cfg.afterStoredRuns;
    for (let i = 0; i < total; i++) {
      for (const d of dbs) {
        const store = localStore(d.db as unknown as UserDb);
        const { last } = await store.outboxBounds();
        const newBase = await d.db.export();
        const updatedAt = `2026-01-01T00:00:00.${String(i + 1).padStart(6, '0')}+00:00`;
        await store.commitPush({ newBase, updatedAt, upToSeq: last, exact: true });
        const t0 = now();
        await d.db.table(TABLE).update(keyOf(randInt(d.rng, d.rows)), { title: `after push ${i}` });
        const dt = now() - t0;
        if (i >= 1) d.afterPush.push(dt);
      }
    }
    for (let i = 0; i < total; i++) {
      for (const d of dbs) {
        const store = localStore(d.db as unknown as UserDb);
        const items = d.db.table(TABLE);
        const { last } = await store.outboxBounds();
        const before = `2026-01-01T00:00:01.${String(2 * i + 1).padStart(6, '0')}+00:00`;
        const after = `2026-01-01T00:00:01.${String(2 * i + 2).padStart(6, '0')}+00:00`;
        await store.commitPush({
          newBase: await d.db.export(),
          updatedAt: before,
          upToSeq: last,
          exact: true,
        });
        // that reset rewrote the whole base (a delta pull never does): let IndexedDB finish writing
        // it, so that the write timed below queues behind the pull's transaction only
        await sleep(200);
        const row = randInt(d.rng, d.rows);
        const value = `pulled ${i}`;
        await store.appendLog({
          changes: [
            {
              before,
              after,
              ops: [{ op: 'replace', path: `/tables/${TABLE}/rows/${row}/${titleIndex}`, value }],
              keyed: [{ op: 'replace', path: `/tables/${TABLE}/rows/${keyOf(row)}/title`, value }],
              clientId: 'another-device',
              batchSeq: i + 1,
              acked: null,
              exact: false,
            },
          ],
        });
        const written = keyOf(randInt(d.rng, d.rows));
        const t0 = now();
        await items.update(written, { title: `after pull ${i}` });
        const dt = now() - t0;
        if (i >= 1) d.afterPull.push(dt);
        const shown = (await items.get(keyOf(row)))?.title;
        if (shown !== (written === keyOf(row) ? `after pull ${i}` : value))
          throw new Error('the pulled change did not reach the view');
      }
    }
    return new Map(dbs.map((d) => [d.rows, { afterPush: d.afterPush, afterPull: d.afterPull }]));
  } finally {
    for (const d of dbs) {
      await d.db.close();
      await backend.dispose(d.place);
    }
  }
}

/** Workload 1 at one size (and, at the largest size, workload 3 on the same database). */
async function writesAt(
  backend: Backend,
  rows: number,
  cfg: LocalConfig,
  reads: boolean,
): Promise<{ w: WriteSamples; get?: number[]; query?: number[]; scan?: number[]; touched?: number }> {
  const place = backend.fresh();
  await seed(place, rows);
  const db = await open(place);
  const items = db.table(TABLE);
  const rng = mulberry32(4242 + rows);
  const w: WriteSamples = {
    rawPut: [],
    resolve: [],
    emit: [],
    listResolve: [],
    listEmit: [],
  };
  try {
    if ((await items.query().count()) !== rows) throw new Error(`seeding ${rows} rows failed`);
    // Updates of random rows, each observed by a row subscription (subscribed before the clock starts),
    // each followed by its floor: a raw Dexie put of one row of the same size, in a database of its
    // own. Alternating the two gives both the same conditions (disk, timers, garbage collection).
    const total = cfg.writeWarmup + cfg.writeRuns(rows);
    const raw = rawDexie(place);
    await raw.open();
    const rawTable = raw.table('items');
    const rowsToPut = makeItems(Math.min(rows, 2000), 11);
    for (let i = 0; i < total; i++) {
      const key = keyOf(randInt(rng, rows));
      let emitted: number | undefined;
      let initial = true;
      const sub = items.observe(key).subscribe(() => {
        if (initial) initial = false;
        else emitted ??= now();
      });
      const t0 = now();
      await items.update(key, { title: `edit ${i}` });
      const t1 = now();
      sub.unsubscribe();
      if (emitted === undefined) throw new Error('the row subscription did not emit');
      if (i >= cfg.writeWarmup) {
        w.resolve.push(t1 - t0);
        w.emit.push(emitted - t0);
      }
      const row = { ...(rowsToPut[randInt(rng, rowsToPut.length)] as Item), title: `edit ${i}` };
      const t2 = now();
      await rawTable.put(row);
      const t3 = now();
      if (i >= cfg.writeWarmup) w.rawPut.push(t3 - t2);
      if (i % 64 === 63) await tick();
    }
    raw.close();
    // The same with a 50-row list query open; each update edits a row it shows, so it must emit.
    let shown: readonly Item[] = [];
    let listAt: number | undefined;
    const sub = listQuery(db)
      .observe()
      .subscribe((r) => {
        shown = r;
        listAt = now();
      });
    const listTotal = Math.min(cfg.writeWarmup, 10) + cfg.listRuns(rows);
    for (let i = 0; i < listTotal; i++) {
      const row = shown[randInt(rng, shown.length)];
      if (row === undefined) throw new Error('the list query is empty');
      listAt = undefined;
      const t0 = now();
      await items.update(row.id, { title: `list edit ${i}` });
      const t1 = now();
      if (listAt === undefined) throw new Error('the list query did not emit');
      if (i >= Math.min(cfg.writeWarmup, 10)) {
        w.listResolve.push(t1 - t0);
        w.listEmit.push(listAt - t0);
      }
    }
    sub.unsubscribe();
    if (!reads) return { w };
    // Workload 3: reads on the same database.
    // Gets are timed in batches of 100 (a browser's timer has 5–100 µs resolution): per-get means.
    const batches = await repeat(Math.ceil(cfg.getRuns / 100), 2, async () => {
      for (let k = 0; k < 100; k++) await items.get(keyOf(randInt(rng, rows)));
    });
    const get = batches.map((ms) => ms / 100);
    const plan = await listQuery(db).explain();
    if (plan.via !== 'index')
      throw new Error(`the list query did not use its index: ${JSON.stringify(plan)}`);
    const query = await repeat(cfg.queryRuns, 3, async () => {
      const r = await listQuery(db).toArray();
      if (r.length !== 50) throw new Error('the list query did not return 50 rows');
    });
    // the same shape on a field without an index: a scan with top-50 selection
    const scan = await repeat(Math.max(5, Math.floor(cfg.queryRuns / 3)), 1, async () => {
      const r = await db
        .table(TABLE)
        .query()
        .where('status', '==', 'open')
        .orderBy('estimate', 'desc')
        .limit(50)
        .toArray();
      if (r.length !== 50) throw new Error('the scan query did not return 50 rows');
    });
    return { w, get, query, scan, touched: plan.touched };
  } finally {
    await db.close();
    await backend.dispose(place);
  }
}

/** Workload 2: 10k inserts, one transaction and one by one, against raw Dexie bulkPut / put. */
async function bulk(backend: Backend, cfg: LocalConfig): Promise<Figure[]> {
  const rows = makeItems(cfg.bulkRows, 7);
  const n = label(cfg.bulkRows);
  const tx: number[] = [];
  const rawBulk: number[] = [];
  for (let run = 0; run < cfg.bulkRuns + 1; run++) {
    const place = backend.fresh();
    const db = await open(place);
    const items = db.table(TABLE);
    const t = now();
    await db.transaction(async () => {
      for (const row of rows) await items.insert(row);
    });
    const dt = now() - t;
    await db.close();
    const raw = rawDexie(place);
    await raw.open();
    const t2 = now();
    await raw.table('items').bulkPut(rows);
    const dt2 = now() - t2;
    await raw.delete();
    await backend.dispose(place);
    if (run > 0) {
      tx.push(dt);
      rawBulk.push(dt2);
    }
  }
  // One by one: every insert is timed (its own outbox row / its own IndexedDB transaction), and
  // every raw put after it.
  const single: number[] = [];
  const rawSingle: number[] = [];
  {
    const place = backend.fresh();
    const db = await open(place);
    const items = db.table(TABLE);
    const raw = rawDexie(place);
    await raw.open();
    const table = raw.table('items');
    const warm = makeItems(200, 8, cfg.bulkRows);
    for (const row of warm) {
      await items.insert(row);
      await table.put(row);
    }
    // each insert followed by its floor, so that both see the same conditions
    for (const row of rows) {
      const t = now();
      await items.insert(row);
      const t1 = now();
      await table.put(row);
      rawSingle.push(now() - t1);
      single.push(t1 - t);
    }
    await db.close();
    await raw.delete();
    await backend.dispose(place);
  }
  const sTx = summarize(tx);
  const sRaw = summarize(rawBulk);
  const sSingle = summarize(single);
  const sRawSingle = summarize(rawSingle);
  const sumSingle = single.reduce((a, b) => a + b, 0);
  const sumRaw = rawSingle.reduce((a, b) => a + b, 0);
  return [
    timing(2, `${n} inserts in one transaction (total)`, sTx, {
      ratio: sTx.p50 / sRaw.p50,
      ratioOf: 'vs raw Dexie bulkPut',
    }),
    timing(2, `raw Dexie bulkPut of the same ${n} rows (floor)`, sRaw),
    timing(2, `${n} single inserts, per insert`, sSingle, {
      ratio: sSingle.p50 / sRawSingle.p50,
      ratioOf: 'vs raw Dexie put',
      target: '≤ 1.3',
      met: atMost(sSingle.p50 / sRawSingle.p50, 1.3),
      note: `total ${(sumSingle / 1000).toFixed(2)} s vs ${(sumRaw / 1000).toFixed(2)} s raw (×${(sumSingle / sumRaw).toFixed(2)})`,
    }),
    timing(2, `raw Dexie put of the same rows, per put (floor)`, sRawSingle),
  ];
}

function rawDexie(place: Place): Dexie {
  const raw = new Dexie(`raw:${place.userId}`, {
    indexedDB: place.indexedDB,
    IDBKeyRange: place.IDBKeyRange,
    cache: 'disabled',
  });
  raw.version(1).stores({ items: 'id' });
  return raw;
}

/**
 * The floor of reading the stored base: the IndexedDB database opened with the platform's API and
 * the base record read in one `get` (what any start-up must at least do), then closed.
 */
async function rawBaseRead(place: Place): Promise<unknown> {
  const idb = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = place.indexedDB.open(databaseName(place.userId));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const req = idb.transaction(['meta'], 'readonly').objectStore('meta').get(META_BASE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    idb.close();
  }
}

/**
 * Workload 4 at one size: open → first query result, against JSON.parse of the compact bytes; and
 * open → first indexed list query, which also builds the declared index (on its first use).
 */
async function startAt(backend: Backend, rows: number, runs: number): Promise<Figure[]> {
  const place = backend.fresh();
  await seed(place, rows);
  const bytes = JSON.stringify(makeDoc(rows));
  let sink = 0;
  // Each start-up is followed by its floors (JSON.parse of the same document, the raw IndexedDB read
  // of the stored base), so that all three see the same conditions (heap, disk, other load).
  const parse: number[] = [];
  const raw: number[] = [];
  const floors = async (keep: boolean) => {
    const t = now();
    sink += (JSON.parse(bytes) as { version: number }).version;
    const t1 = now();
    const record = (await rawBaseRead(place)) as { doc?: { tables?: Record<string, { rows: unknown[] }> } };
    const t2 = now();
    if (record.doc?.tables?.[TABLE]?.rows.length !== rows)
      throw new Error('raw read returned the wrong base');
    if (keep) {
      parse.push(t1 - t);
      raw.push(t2 - t1);
    }
  };
  const measure = async (
    first: (db: Db) => Promise<readonly unknown[]>,
    withFloors: boolean,
  ): Promise<number[]> => {
    const samples: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const t = now();
      const db = await open(place);
      const got = await first(db);
      const dt = now() - t;
      if (got.length !== Math.min(50, rows)) throw new Error('start-up query returned the wrong rows');
      await db.close();
      if (i > 0) samples.push(dt);
      await tick();
      if (withFloors) {
        await floors(i > 0);
        await tick();
      }
    }
    return samples;
  };
  const samples = await measure((db) => db.table(TABLE).query().limit(50).toArray(), true);
  const listSamples = await measure((db) => listQuery(db).toArray(), false);
  await backend.dispose(place);
  if (sink === 0) throw new Error('unreachable');
  const s = summarize(samples);
  const l = summarize(listSamples);
  const p = summarize(parse);
  const r = summarize(raw);
  const n = label(rows);
  const target = rows >= 10_000 ? { target: '≤ 3', met: atMost(s.p50 / p.p50, 3) } : {};
  return [
    timing(4, `start-up ${n} rows: open → first query result`, s, {
      ratio: s.p50 / p.p50,
      ratioOf: 'vs JSON.parse',
      ...target,
      note: `\`query().limit(50)\`: reads 50 rows; ×${(s.p50 / r.p50).toFixed(2)} of the raw IndexedDB read below`,
    }),
    timing(4, `start-up ${n} rows: open → first indexed list query (where + orderBy + limit 50)`, l, {
      ratio: l.p50 / p.p50,
      ratioOf: 'vs JSON.parse',
      note: "builds the index ['status', 'priority'] on its first use (every row of the table made then)",
    }),
    timing(
      4,
      `JSON.parse of the same ${(bytes.length / 1024 / 1024).toFixed(2)} MiB compact document (floor)`,
      p,
    ),
    timing(4, `raw IndexedDB read of the stored ${n}-row base: open + one get (floor)`, r, {
      ratio: r.p50 / p.p50,
      ratioOf: 'vs JSON.parse',
      note: "the platform's API, no library: what any start-up from this record costs at least",
    }),
  ];
}

/**
 * Workload 4 with edits not yet pushed: `pending` one-field updates (one outbox row each, as made
 * offline) on a `rows`-row document, then open → first query result. The outbox is replayed on the
 * base at every open; the figure is compared with the same open without pending edits.
 */
async function startWithPending(
  backend: Backend,
  rows: number,
  pending: number,
  runs: number,
  clean: number,
): Promise<Figure> {
  const place = backend.fresh();
  await seed(place, rows);
  const rng = mulberry32(9009 + pending);
  {
    const db = await open(place);
    const items = db.table(TABLE);
    for (let i = 0; i < pending; i++)
      await items.update(keyOf(randInt(rng, rows)), { title: `offline ${i}` });
    await db.close();
  }
  const samples: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t = now();
    const db = await open(place);
    const first = await db.table(TABLE).query().limit(50).toArray();
    const dt = now() - t;
    if (first.length !== 50) throw new Error('start-up query returned the wrong rows');
    await db.close();
    if (i > 0) samples.push(dt);
    await tick();
  }
  await backend.dispose(place);
  const s = summarize(samples);
  return timing(
    4,
    `start-up ${label(rows)} rows + ${label(pending)} pending edits: open → first query result`,
    s,
    {
      ratio: s.p50 / clean,
      ratioOf: `vs ${label(rows)} rows, none pending`,
      note: 'the outbox is replayed on the base at every open (and after every push or pull)',
    },
  );
}

/** Workload 4: heap of an open database (first query run) against the parsed compact document. */
async function heapAt(backend: Backend, rows: number): Promise<Figure[]> {
  const heap = backend.heap;
  if (heap === undefined) return [];
  const place = backend.fresh();
  await seed(place, rows);
  const bytes = JSON.stringify(makeDoc(rows));
  const h0 = await heap.afterGc();
  let parsed: unknown = JSON.parse(bytes);
  const h1 = await heap.afterGc();
  if ((parsed as { version: number }).version !== 1) throw new Error('unreachable');
  parsed = undefined;
  const h2 = await heap.afterGc();
  const db = await open(place);
  const first = await listQuery(db).toArray();
  if (first.length !== 50) throw new Error('the list query did not return 50 rows');
  const h3 = await heap.afterGc();
  await db.close();
  await backend.dispose(place);
  const doc = h1 - h0;
  const open_ = h3 - h2;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return [
    {
      workload: 4,
      name: `heap of an open ${label(rows)}-row database (index ['status', 'priority'], list query run)`,
      value: open_,
      unit: 'bytes',
      ratio: open_ / doc,
      ratioOf: 'vs the parsed compact document',
      target: '≤ 2',
      met: atMost(open_ / doc, 2),
      note: `${mib(open_)} vs ${mib(doc)} for JSON.parse of the same ${(bytes.length / 1024 / 1024).toFixed(2)} MiB; ${heap.how} (the IndexedDB copy is not counted)`,
    },
    {
      workload: 4,
      name: `heap of the parsed ${label(rows)}-row compact document (floor)`,
      value: doc,
      unit: 'bytes',
    },
  ];
}

/**
 * Runs workloads 1–4 (or those of `only`; workload 3 runs on workload 1's largest database) and
 * returns their figures in plan order.
 */
export async function localWorkloads(
  backend: Backend,
  cfg: LocalConfig,
  only: ReadonlySet<number> = new Set([1, 2, 3, 4]),
): Promise<Figure[]> {
  const w1: Figure[] = [];
  const w1list: Figure[] = [];
  const w3: Figure[] = [];
  const bySize = new Map<number, WriteSamples>();
  const largest = Math.max(...cfg.sizes);
  for (const rows of only.has(1) || only.has(3) ? cfg.sizes : []) {
    cfg.log(`1: updates at ${label(rows)} rows`);
    const r = await writesAt(backend, rows, cfg, rows === largest);
    bySize.set(rows, r.w);
    if (r.get !== undefined && r.query !== undefined) {
      w3.push(
        timing(3, `get by key at ${label(rows)} rows`, summarize(r.get), {
          note: 'mean per get over batches of 100; p50/p99 over batches',
        }),
      );
      const q = summarize(r.query);
      w3.push(
        timing(3, `where + orderBy + limit 50 at ${label(rows)} rows, with an index`, q, {
          target: '≤ 1 ms',
          met: atMost(q.p50, 1),
          note: `index ['status', 'priority'] (explain: ${r.touched} rows touched)`,
        }),
      );
      if (r.scan !== undefined) {
        w3.push(
          timing(3, `where + orderBy + limit 50 at ${label(rows)} rows, no usable index`, summarize(r.scan), {
            note: 'orderBy a field without an index: a scan with top-50 selection',
          }),
        );
      }
    }
  }
  const smallest = Math.min(...cfg.sizes);
  const base = bySize.get(smallest) as WriteSamples;
  for (const rows of only.has(1) ? cfg.sizes : []) {
    const w = bySize.get(rows) as WriteSamples;
    const resolve = summarize(w.resolve);
    const emit = summarize(w.emit);
    const isLargest = rows === largest && rows !== smallest;
    const ratioOf = `${label(rows)}/${label(smallest)}`;
    const r1 = resolve.p50 / summarize(base.resolve).p50;
    const r2 = emit.p50 / summarize(base.emit).p50;
    w1.push(
      timing(1, `update 1 field, ${label(rows)} rows → promise resolved`, resolve, {
        ...(isLargest ? { ratio: r1, ratioOf, target: '≤ 1.5', met: atMost(r1, 1.5) } : {}),
      }),
      timing(1, `update 1 field, ${label(rows)} rows → row observer emitted`, emit, {
        ...(isLargest ? { ratio: r2, ratioOf, target: '≤ 1.5', met: atMost(r2, 1.5) } : {}),
      }),
    );
    const listEmit = summarize(w.listEmit);
    const r3 = listEmit.p50 / emit.p50;
    w1list.push(
      timing(1, `update 1 field, ${label(rows)} rows, 50-row list query open → list emitted`, listEmit, {
        ratio: r3,
        ratioOf: 'vs the same write, no list open',
        target: '≤ 2',
        met: atMost(r3, 2),
        note: 'the list (where + orderBy + limit 50) is maintained from the changed row',
      }),
    );
    const rawPut = summarize(w.rawPut);
    const r4 = resolve.p50 / rawPut.p50;
    w1list.push(
      timing(1, `raw Dexie put of one row of the same size, ${label(rows)} rows (floor)`, rawPut, {
        ratio: r4,
        ratioOf: 'update 1 field → resolved / raw put',
        ...(rows === 10_000 ? { target: '≤ 1.2', met: atMost(r4, 1.2) } : {}),
      }),
    );
  }
  const w1push: Figure[] = [];
  if (only.has(1)) cfg.log('1: a write right after a stored push / pull, every size in turn');
  const stored = only.has(1) ? await afterStored(backend, cfg) : new Map();
  const after = (samples: 'afterPush' | 'afterPull', what: string, note: string) => {
    for (const rows of only.has(1) ? cfg.sizes : []) {
      const s = summarize(stored.get(rows)[samples]);
      const isLargest = rows === largest && rows !== smallest;
      const r = s.p50 / summarize(stored.get(smallest)[samples]).p50;
      w1push.push(
        timing(
          1,
          `update 1 field, ${label(rows)} rows, right after ${what} was stored → promise resolved`,
          s,
          {
            ...(isLargest
              ? {
                  ratio: r,
                  ratioOf: `${label(rows)}/${label(smallest)}`,
                  target: '≤ 1.5',
                  met: atMost(r, 1.5),
                }
              : {}),
            note,
          },
        ),
      );
    }
  };
  after(
    'afterPush',
    'a push',
    'the push stored base + pushed entries (same document), marked exact as the sync engine does',
  );
  after(
    'afterPull',
    'a pull',
    "another device's 1-field change stored as a log record with its keyed ops, as the delta puller stores it",
  );
  const w2: Figure[] = [];
  if (only.has(2)) {
    cfg.log(`2: ${label(cfg.bulkRows)} inserts`);
    w2.push(...(await bulk(backend, cfg)));
  }
  const w4: Figure[] = [];
  if (!only.has(4)) return [...w1, ...w1list, ...w1push, ...w2, ...w3];
  for (const rows of cfg.sizes) {
    cfg.log(`4: start-up at ${label(rows)} rows`);
    w4.push(...(await startAt(backend, rows, cfg.startRuns(rows))));
  }
  cfg.log(`4: heap at ${label(largest)} rows`);
  w4.push(...(await heapAt(backend, largest)));
  const pendingRows = cfg.pendingAt.rows;
  const clean =
    w4.find((f) => f.name.startsWith(`start-up ${label(pendingRows)} rows:`))?.value ?? Number.NaN;
  for (const pending of cfg.pendingAt.edits) {
    cfg.log(`4: start-up at ${label(pendingRows)} rows with ${label(pending)} pending edits`);
    w4.push(await startWithPending(backend, pendingRows, pending, cfg.pendingAt.runs, clean));
  }
  return [...w1, ...w1list, ...w1push, ...w2, ...w3, ...w4];
}

/** Touches every table once so module initialisation is not measured (used by the runners). */
export async function warmUp(backend: Backend): Promise<void> {
  const place = backend.fresh();
  await seed(place, 100);
  const db = await open(place);
  await db.table(TABLE).update(keyOf(1), { title: 'warm' });
  await localStore(db as unknown as UserDb).countOutbox();
  await db.close();
  await backend.dispose(place);
}
