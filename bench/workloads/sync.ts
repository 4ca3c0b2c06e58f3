/**
 * Workloads 5 and 6, through the dev server (PGlite in memory) with the real supabase-js client and
 * userdb's sync engine at its default timings (50 ms push debounce; Realtime pokes):
 *
 * 5. Wire: the request bytes of pushing a one-field edit of a 10k-row document, against the naive
 *    write of SEED.md (`userdb_set` of the table's whole `rows` array); then 10k edits made offline:
 *    how many round trips and how long until they are all on the server.
 * 6. Propagation: an edit on device A until a live query on device B (same user) emits it.
 * 9. Delta sync, side by side with whole documents (`sync: { delta: false }`) at 1k/10k/100k rows:
 *    bytes device B receives for a one-field edit by A (RPC answers + Realtime frames), A→B
 *    propagation, IndexedDB bytes written by A's push and by B's pull, and B's catch-up after
 *    many changes made while it was closed (requests and bytes, against the document's size).
 *
 * The dev server runs in a process of its own (PGlite in memory); devices and benchmark share
 * another. Both share the machine's cores, so the times include the server's work.
 */
import { keyOf, makeDoc, TABLE } from '../lib/data.js';
import { type Device, newUser, openDevice, type RpcRecord, signIn } from '../lib/devices.js';
import { type Figure, timing } from '../lib/report.js';
import { mulberry32, randInt } from '../lib/rng.js';
import { type ServerAddress, startServerProcess } from '../lib/server-process.js';
import { now, summarize } from '../lib/stats.js';

/** Options of {@link syncWorkloads}. */
export interface SyncBenchOptions {
  quick: boolean;
  log: (line: string) => void;
  /** Workload 9's modes (default both): `delta`, `whole` (whole documents). */
  modes?: readonly ('delta' | 'whole')[];
}

function label(rows: number): string {
  return `${rows / 1000}k`;
}

function sumBytes(records: readonly RpcRecord[], fn: string): { calls: number; bytes: number } {
  let calls = 0;
  let bytes = 0;
  for (const r of records) {
    if (r.fn !== fn) continue;
    calls += 1;
    bytes += r.requestBytes;
  }
  return { calls, bytes };
}

async function seeded(device: Device, rows: number): Promise<void> {
  await device.db.import(makeDoc(rows));
  await device.flush();
  await device.settled();
}

/** Workload 5. */
async function wire(server: ServerAddress, o: SyncBenchOptions): Promise<Figure[]> {
  const rows = o.quick ? 1000 : 10_000;
  const offlineEdits = o.quick ? 1000 : 10_000;
  const n = label(rows);
  const user = await newUser(server);
  const a = await openDevice(server, user);
  const figures: Figure[] = [];
  try {
    await seeded(a, rows);
    const items = a.db.table(TABLE);
    const rng = mulberry32(5005);
    // One-field edits, each pushed at once (flush skips the debounce).
    const bytes: number[] = [];
    const times: number[] = [];
    const rpcTimes: number[] = [];
    const runs = o.quick ? 10 : 30;
    for (let i = 0; i < 3 + runs; i++) {
      const mark = a.rpcs.length;
      const t0 = now();
      await items.update(keyOf(randInt(rng, rows)), { title: `wire edit ${i}` });
      await a.flush();
      const dt = now() - t0;
      const sent = sumBytes(a.rpcs.slice(mark), 'userdb_patch');
      if (sent.calls !== 1) throw new Error(`expected one userdb_patch per edit, saw ${sent.calls}`);
      if (i >= 3) {
        bytes.push(sent.bytes);
        times.push(dt);
        rpcTimes.push(a.rpcs.slice(mark).find((x) => x.fn === 'userdb_patch')?.ms ?? Number.NaN);
      }
    }
    // Edits at a typing pace while the engine syncs them (default 50 ms debounce): the local write
    // latency must not depend on pushes in the background.
    const paced: number[] = [];
    const pacedRuns = o.quick ? 50 : 200;
    const markPaced = a.rpcs.length;
    for (let i = 0; i < pacedRuns; i++) {
      const t0 = now();
      await items.update(keyOf(randInt(rng, rows)), { title: `typing ${i}` });
      paced.push(now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await a.flush();
    const pushesWhilePaced = sumBytes(a.rpcs.slice(markPaced), 'userdb_patch').calls;
    // The naive design (SEED.md): replace the whole rows array, as another user on the same server.
    const naiveUser = await newUser(server);
    const naiveRpcs: RpcRecord[] = [];
    const sb = await signIn(server, naiveUser, naiveRpcs);
    const doc = await a.db.export();
    const table = doc.tables[TABLE];
    if (table === undefined) throw new Error('no items table');
    let r = await sb.rpc('userdb_init');
    if (r.error !== null) throw new Error(r.error.message);
    r = await sb.rpc('userdb_set', { path: ['tables', TABLE], value: { schema: table.schema, rows: [] } });
    if (r.error !== null) throw new Error(r.error.message);
    const naiveTimes: number[] = [];
    const naiveRuns = o.quick ? 3 : 10;
    naiveRpcs.length = 0;
    for (let i = 0; i < 1 + naiveRuns; i++) {
      const row = table.rows[randInt(rng, table.rows.length)];
      if (row !== undefined) row[1] = `naive edit ${i}`;
      const t0 = now();
      const res = await sb.rpc('userdb_set', { path: ['tables', TABLE, 'rows'], value: table.rows });
      const dt = now() - t0;
      if (res.error !== null) throw new Error(res.error.message);
      if (i >= 1) naiveTimes.push(dt);
    }
    const naiveBytes = summarize(naiveRpcs.slice(1).map((x) => x.requestBytes));
    const patchBytes = summarize(bytes);
    figures.push(
      {
        workload: 5,
        name: `push of a 1-field edit, ${n} rows: request bytes`,
        unit: 'bytes',
        value: patchBytes.p50,
        n: patchBytes.n,
        ratio: naiveBytes.p50 / patchBytes.p50,
        ratioOf: 'naive bytes / userdb bytes',
        note: 'userdb_patch body: index-based ops + token + client id + batch seq',
      },
      {
        workload: 5,
        name: `naive write (userdb_set of all rows), ${n} rows: request bytes`,
        unit: 'bytes',
        value: naiveBytes.p50,
        n: naiveBytes.n,
      },
      timing(5, `1-field edit, ${n} rows → flush() resolved (one round trip)`, summarize(times), {
        note: 'local write + compile + userdb_patch + store the new base',
      }),
      timing(5, `… of which the userdb_patch request (HTTP round trip), ${n} rows`, summarize(rpcTimes)),
      timing(5, `naive userdb_set of all rows, ${n} rows (round trip)`, summarize(naiveTimes), {
        ratio: summarize(naiveTimes).p50 / summarize(times).p50,
        ratioOf: 'vs userdb flush',
      }),
    );
    const pacedSummary = summarize(paced);
    figures.push(
      timing(
        5,
        `update 1 field, ${n} rows, while syncing (one edit every 20 ms) → promise resolved`,
        pacedSummary,
        {
          note: `${pushesWhilePaced} pushes ran meanwhile; compare with workload 1 (no sync)`,
        },
      ),
    );
    // Offline edits, then back online.
    o.log(`5: ${offlineEdits} offline edits`);
    a.setOffline(true);
    const tw = now();
    const offlineWrites: number[] = [];
    for (let i = 0; i < offlineEdits; i++) {
      const t = now();
      await items.update(keyOf(randInt(rng, rows)), { title: `offline edit ${i}` });
      offlineWrites.push(now() - t);
    }
    const writeTime = now() - tw;
    const mark = a.rpcs.length;
    const t0 = now();
    a.setOffline(false);
    await a.flush();
    const flushTime = now() - t0;
    const after = a.rpcs.slice(mark);
    const pushed = sumBytes(after, 'userdb_patch');
    figures.push(
      timing(
        5,
        `update 1 field, ${n} rows, offline (sync attached) → promise resolved`,
        summarize(offlineWrites),
        {
          note: 'compare with workload 1 at the same size (no sync)',
        },
      ),
      {
        workload: 5,
        name: `${label(offlineEdits)} edits offline, ${n} rows → back online: round trips`,
        unit: 'count',
        value: after.length,
        note: `${pushed.calls} userdb_patch (${(pushed.bytes / 1024).toFixed(0)} KiB), ${after.length - pushed.calls} other; 1 MiB batch cap`,
      },
      {
        workload: 5,
        name: `${label(offlineEdits)} edits offline, ${n} rows → flush() resolved`,
        unit: 'ms',
        value: flushTime,
        n: 1,
        note: `the ${label(offlineEdits)} local writes took ${(writeTime / 1000).toFixed(2)} s`,
      },
    );
  } finally {
    await a.close();
  }
  return figures;
}

/** When device B's live query of row `key` first shows `title` (rejects after 30 s). */
function seenOn(device: Device, key: string, title: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('device B did not see the edit within 30 s')), 30_000);
    const sub = device.db
      .table(TABLE)
      .observe(key)
      .subscribe((row) => {
        if (row?.title === title) {
          clearTimeout(timer);
          queueMicrotask(() => sub.unsubscribe());
          resolve(now());
        }
      });
  });
}

/** Workload 6 at one size. */
async function propagation(server: ServerAddress, rows: number, runs: number): Promise<Figure> {
  const user = await newUser(server);
  const a = await openDevice(server, user);
  let b: Device | undefined;
  try {
    await seeded(a, rows);
    b = await openDevice(server, user);
    if ((await b.db.table(TABLE).query().count()) !== rows) throw new Error('device B did not pull the rows');
    const rng = mulberry32(6006 + rows);
    const samples: number[] = [];
    for (let i = 0; i < 3 + runs; i++) {
      const key = keyOf(randInt(rng, rows));
      const title = `propagated ${i}`;
      let t0 = 0;
      const seen = seenOn(b as Device, key, title);
      t0 = now();
      await a.db.table(TABLE).update(key, { title });
      const at = await seen;
      if (i >= 3) samples.push(at - t0);
      await a.settled();
      await b.settled();
    }
    return timing(6, `device A edit → device B live query emitted, ${label(rows)} rows`, summarize(samples), {
      note: 'default timings: 50 ms push debounce, then Realtime poke → B applies',
    });
  } finally {
    await b?.close();
    await a.close();
  }
}

function idbBytes(d: Device): number {
  const s = d.db.localStore.writeStats;
  return s.meta + s.log + s.own; // own: the cells a push remembers for overridden reports
}

function received(d: Device): number {
  return d.received.rpc + d.received.realtime;
}

/** Workload 9 at one size, by delta or by whole documents. */
async function deltaAt(
  server: ServerAddress,
  rows: number,
  delta: boolean,
  o: SyncBenchOptions,
): Promise<{ figures: Figure[]; propagationP50: number }> {
  const mode = delta ? 'delta' : 'whole documents';
  const sync = { delta };
  const user = await newUser(server);
  const a = await openDevice(server, user, { sync });
  let b: Device | undefined;
  const figures: Figure[] = [];
  try {
    await seeded(a, rows);
    b = await openDevice(server, user, { sync });
    await b.settled();
    const docBytes = Buffer.byteLength(JSON.stringify(await a.db.export()));
    const rng = mulberry32(9009 + rows);
    // whole documents at 100k rows cost seconds per edit: fewer runs there (n is in the table)
    const runs = o.quick ? 5 : !delta && rows >= 100_000 ? 6 : 20;
    const rx: number[] = [];
    const times: number[] = [];
    const pushIdb: number[] = [];
    const pullIdb: number[] = [];
    for (let i = 0; i < 2 + runs; i++) {
      const key = keyOf(randInt(rng, rows));
      const title = `delta ${i}`;
      const seen = seenOn(b, key, title);
      const rx0 = received(b);
      const a0 = idbBytes(a);
      const b0 = idbBytes(b);
      const t0 = now();
      await a.db.table(TABLE).update(key, { title });
      const at = await seen;
      await a.settled();
      await b.settled();
      if (i < 2) continue;
      times.push(at - t0);
      rx.push(received(b) - rx0);
      pushIdb.push(idbBytes(a) - a0);
      pullIdb.push(idbBytes(b) - b0);
    }
    const n = label(rows);
    const rxS = summarize(rx);
    const prop = summarize(times);
    figures.push(
      {
        workload: 9,
        name: `${mode}: bytes B receives for a 1-field edit by A, ${n} rows`,
        unit: 'bytes',
        value: rxS.p50,
        n: rxS.n,
        ratio: rxS.p50 / docBytes,
        ratioOf: 'of the document',
        note: `RPC answers + Realtime frames; document ${(docBytes / 1024).toFixed(0)} KiB`,
      },
      timing(9, `${mode}: A edit → B live query emitted, ${n} rows`, prop),
      {
        workload: 9,
        name: `${mode}: IndexedDB bytes written by A's push of a 1-field edit, ${n} rows`,
        unit: 'bytes',
        value: summarize(pushIdb).p50,
        n: pushIdb.length,
        note: 'base, log and meta records (the outbox row of the write itself not counted)',
      },
      {
        workload: 9,
        name: `${mode}: IndexedDB bytes written by B's pull of a 1-field edit, ${n} rows`,
        unit: 'bytes',
        value: summarize(pullIdb).p50,
        n: pullIdb.length,
      },
    );
    // catch-up: B closed while A makes many changes, then reopened on the same IndexedDB
    // each change is one push, and the server rewrites the whole JSONB value on every push
    // (≈ 0.5 s at 100k rows on PGlite): 100 changes at 100k rows, 1,000 below
    const changes = o.quick ? 100 : rows >= 100_000 ? 100 : 1000;
    const idb = b.indexedDB;
    await b.close();
    b = undefined;
    const rng2 = mulberry32(9109 + rows);
    const items = a.db.table(TABLE);
    let changeBytes = 0;
    for (let i = 0; i < changes; i++) {
      const mark = a.rpcs.length;
      await items.update(keyOf(randInt(rng2, rows)), { status: i % 2 === 0 ? 'closed' : 'open' });
      await a.flush();
      changeBytes += sumBytes(a.rpcs.slice(mark), 'userdb_patch').bytes;
    }
    const t0 = now();
    b = await openDevice(server, user, { sync, indexedDB: idb });
    await b.settled();
    const catchUp = now() - t0;
    const pulls = b.rpcs.filter((r) => r.fn === 'userdb_pull' || r.fn === 'userdb_init').length;
    figures.push({
      workload: 9,
      name: `${mode}: catch-up after ${changes} remote changes while closed, ${n} rows: bytes received`,
      unit: 'bytes',
      value: b.received.rpc,
      n: 1,
      ratio: b.received.rpc / Math.min(docBytes, changeBytes),
      ratioOf: 'of min(document, changes)',
      note: `on the wire (gzip when 1 KiB or more); decoded ${(b.received.rpcDecoded / 1024).toFixed(1)} KiB, ×${(b.received.rpcDecoded / Math.min(docBytes, changeBytes)).toFixed(2)}; ${pulls} pull request(s), ${catchUp.toFixed(0)} ms to settled; document ${(docBytes / 1024).toFixed(0)} KiB, changes sent ${(changeBytes / 1024).toFixed(0)} KiB`,
    });
    return { figures, propagationP50: prop.p50 };
  } finally {
    await b?.close();
    await a.close();
  }
}

/** Workload 9: delta sync and whole documents side by side. */
async function deltaWorkload(server: ServerAddress, o: SyncBenchOptions): Promise<Figure[]> {
  const figures: Figure[] = [];
  const modes = o.modes ?? ['whole', 'delta'];
  for (const delta of [false, true].filter((d) => modes.includes(d ? 'delta' : 'whole'))) {
    let floor: number | undefined;
    for (const rows of o.quick ? [1000] : [1000, 10_000, 100_000]) {
      o.log(`9: ${delta ? 'delta' : 'whole documents'} at ${label(rows)} rows`);
      const r = await deltaAt(server, rows, delta, o);
      floor ??= r.propagationP50;
      const prop = r.figures.find((f) => f.name.includes('live query emitted'));
      if (prop !== undefined && rows !== 1000) {
        prop.ratio = r.propagationP50 / floor;
        prop.ratioOf = 'vs 1k rows, same mode';
      }
      figures.push(...r.figures);
    }
  }
  return figures;
}

/** Runs workloads 5, 6 and 9 on one dev server (PGlite in memory). */
export async function syncWorkloads(o: SyncBenchOptions, only?: ReadonlySet<number>): Promise<Figure[]> {
  const server = await startServerProcess();
  try {
    const figures: Figure[] = [];
    if (only === undefined || only.has(5)) {
      o.log('5: wire bytes');
      figures.push(...(await wire(server, o)));
    }
    if (only === undefined || only.has(6)) {
      for (const rows of o.quick ? [1000] : [1000, 10_000]) {
        o.log(`6: propagation at ${label(rows)} rows`);
        figures.push(await propagation(server, rows, o.quick ? 5 : rows >= 10_000 ? 20 : 30));
      }
    }
    if (only === undefined || only.has(9)) figures.push(...(await deltaWorkload(server, o)));
    return figures;
  } finally {
    await server.stop();
  }
}
