/**
 * Workload 7: the server side of a push. `userdb_patch` with one one-field `replace` op, called
 * directly in SQL as the document's owner (role `authenticated`, JWT claims set as PostgREST does),
 * at 1k/10k/100k rows, on PGlite and — when DATABASE_URL is set — on a PostgreSQL server (in a
 * throwaway database). The time is the statement's; it grows with the document because Postgres
 * rewrites the whole JSONB value on every update. The floor is that rewrite alone: one superuser
 * `UPDATE … set db = jsonb_set(db, path, value)` of one field. For comparison, the naive write of
 * SEED.md (`userdb_set` of the whole `rows` array) is timed on the same documents.
 *
 * Delta sync on the server, same engines:
 * - the bytes of `userdb_pull(since, delta => true)` for one change, against the whole document,
 *   at each size;
 * - one `userdb_patch` of a 10,000-op batch outside the rows (`replace /version`, and adding 10,000
 *   members to an object) on a 2 MB document, before (the first migration only) and after the
 *   delta migration (the patch engine in time linear in ops + document);
 * - the change log of one user after 10,000 one-op changes with the default retention (entries
 *   kept, their bytes, the table's size on disk).
 *
 * The document size limit (`userdb.max_bytes()`, 8 MiB by default) is raised to 256 MiB in the
 * benchmark database so that 100k rows fit.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { type Database, openDatabase, type Queryable } from '../../src/devserver/index.js';
import { makeDoc } from '../lib/data.js';
import { type Figure, notMeasured, timing } from '../lib/report.js';
import { mulberry32, randInt } from '../lib/rng.js';
import { now, summarize } from '../lib/stats.js';

/** Options of {@link serverWorkload}. */
export interface ServerOptions {
  quick: boolean;
  log: (line: string) => void;
  databaseUrl: string | undefined;
}

const root = new URL('../../', import.meta.url);

/** The bootstrap, then the migrations in order (only the first `upTo` when given). */
function schemaScripts(upTo?: number): string[] {
  const dir = new URL('supabase/migrations/', root);
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .slice(0, upTo)
    .map((f) => readFileSync(new URL(f, dir), 'utf8'));
  return [readFileSync(new URL('src/devserver/sql/bootstrap.sql', root), 'utf8'), ...migrations];
}

const RAISE_LIMIT = `
create or replace function userdb.max_bytes() returns bigint
language sql immutable set search_path = '' as $$ select 268435456::bigint $$;`;

async function asUser<T>(db: Database, uid: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.exec('set local role authenticated');
    await tx.query(`select set_config('request.jwt.claims', $1, true)`, [
      JSON.stringify({ sub: uid, role: 'authenticated' }),
    ]);
    return fn(tx);
  });
}

function label(rows: number): string {
  return `${rows / 1000}k`;
}

interface Measured {
  patch: number[];
  floor: number[];
  naive: number[];
  textBytes: number;
  /** Bytes (JSON text) of a delta pull of the last change, and of the whole document. */
  deltaBytes: number;
  wholeBytes: number;
}

/** A user with a document; returns its id and token. */
async function userWithDoc(db: Database, doc: unknown): Promise<{ uid: string; token: string }> {
  const uid = randomUUID();
  await db.query('insert into auth.users (id, email, role, aud) values ($1, $2, $3, $3)', [
    uid,
    `${uid}@bench.invalid`,
    'authenticated',
  ]);
  await asUser(db, uid, (tx) => tx.query('select public.userdb_init()'));
  await db.query('update public.user_databases set db = $1::jsonb where user_id = $2', [
    JSON.stringify(doc),
    uid,
  ]);
  const t = await db.query<{ t: string }>(
    'select updated_at::text as t from public.user_databases where user_id = $1',
    [uid],
  );
  return { uid, token: t[0]?.t as string };
}

async function measure(db: Database, rows: number, patchRuns: number, naiveRuns: number): Promise<Measured> {
  const uid = randomUUID();
  await db.query('insert into auth.users (id, email, role, aud) values ($1, $2, $3, $3)', [
    uid,
    `${uid}@bench.invalid`,
    'authenticated',
  ]);
  await asUser(db, uid, (tx) => tx.query('select public.userdb_init()'));
  const doc = makeDoc(rows);
  await db.query('update public.user_databases set db = $1::jsonb where user_id = $2', [
    JSON.stringify(doc),
    uid,
  ]);
  const info = await db.query<{ t: string; b: number }>(
    'select updated_at::text as t, octet_length(db::text) as b from public.user_databases where user_id = $1',
    [uid],
  );
  let token = info[0]?.t as string;
  const rng = mulberry32(777 + rows);
  const patch: number[] = [];
  const warmup = 3;
  let lastBefore = token;
  for (let i = 0; i < warmup + patchRuns; i++) {
    lastBefore = token;
    const ops = [{ op: 'replace', path: `/tables/items/rows/${randInt(rng, rows)}/1`, value: `edit ${i}` }];
    const dt = await asUser(db, uid, async (tx) => {
      const t0 = now();
      const r = await tx.query<{ r: { applied: boolean; updated_at: string } }>(
        'select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4) as r',
        [JSON.stringify(ops), token, 'bench-client', i + 1],
      );
      const elapsed = now() - t0;
      const result = r[0]?.r;
      if (result?.applied !== true) throw new Error('userdb_patch did not apply');
      token = result.updated_at;
      return elapsed;
    });
    if (i >= warmup) patch.push(dt);
  }
  const pulled = await asUser(db, uid, (tx) =>
    tx.query<{ d: number; w: number }>(
      `select octet_length(public.userdb_pull($1::timestamptz, true)::text) as d,
              octet_length(public.userdb_pull(null)::text) as w`,
      [lastBefore],
    ),
  );
  // The floor: one UPDATE that rewrites the JSONB value with one field changed (jsonb_set), as the
  // superuser (no function call, no RLS, no patch parsing) — what any write of this row costs. Like
  // userdb_patch, timed inside its transaction, without the commit.
  const floor: number[] = [];
  for (let i = 0; i < warmup + patchRuns; i++) {
    const path = `{tables,items,rows,${randInt(rng, rows)},1}`;
    const dt = await db.transaction(async (tx) => {
      const t0 = now();
      await tx.query(
        'update public.user_databases set db = jsonb_set(db, $1::text[], $2::jsonb) where user_id = $3',
        [path, JSON.stringify(`floor ${i}`), uid],
      );
      return now() - t0;
    });
    if (i >= warmup) floor.push(dt);
  }
  const current = await db.query<{ t: string }>(
    'select updated_at::text as t from public.user_databases where user_id = $1',
    [uid],
  );
  token = current[0]?.t as string;
  const naive: number[] = [];
  const rowsJson = JSON.stringify(doc.tables.items?.rows);
  for (let i = 0; i < 1 + naiveRuns; i++) {
    const dt = await asUser(db, uid, async (tx) => {
      const t0 = now();
      const r = await tx.query<{ r: string }>(
        `select public.userdb_set('{tables,items,rows}', $1::jsonb, $2::timestamptz)::text as r`,
        [rowsJson, token],
      );
      const elapsed = now() - t0;
      token = r[0]?.r as string;
      return elapsed;
    });
    if (i >= 1) naive.push(dt);
  }
  await db.query('delete from auth.users where id = $1', [uid]);
  return {
    patch,
    floor,
    naive,
    textBytes: Number(info[0]?.b),
    deltaBytes: Number(pulled[0]?.d),
    wholeBytes: Number(pulled[0]?.w),
  };
}

async function onEngine(
  name: string,
  db: Database,
  options: ServerOptions,
  sizes: number[],
): Promise<Figure[]> {
  for (const script of schemaScripts()) await db.exec(script);
  await db.exec(RAISE_LIMIT);
  const out: Figure[] = [];
  let first: number | undefined;
  for (const rows of sizes) {
    options.log(`7: userdb_patch on ${name} at ${label(rows)} rows`);
    const patchRuns = options.quick ? 5 : rows >= 100_000 ? 15 : 40;
    const naiveRuns = options.quick ? 2 : rows >= 100_000 ? 5 : 10;
    const m = await measure(db, rows, patchRuns, naiveRuns);
    const s = summarize(m.patch);
    const f = summarize(m.floor);
    const n = summarize(m.naive);
    first ??= s.p50;
    out.push(
      timing(7, `${name}: userdb_patch (1 replace op), ${label(rows)} rows`, s, {
        ...(rows !== sizes[0]
          ? { ratio: s.p50 / first, ratioOf: `${label(rows)}/${label(sizes[0] as number)}` }
          : {}),
        note: `document ${(m.textBytes / 1024 / 1024).toFixed(2)} MiB as text`,
      }),
      timing(7, `${name}: floor, UPDATE … jsonb_set of 1 field, ${label(rows)} rows`, f, {
        ratio: s.p50 / f.p50,
        ratioOf: 'userdb_patch / floor',
      }),
      timing(7, `${name}: naive userdb_set of the whole rows array, ${label(rows)} rows`, n, {
        ratio: n.p50 / s.p50,
        ratioOf: 'vs userdb_patch',
      }),
      {
        workload: 7,
        name: `${name}: userdb_pull(since, delta) of one change, ${label(rows)} rows`,
        unit: 'bytes',
        value: m.deltaBytes,
        ratio: m.deltaBytes / m.wholeBytes,
        ratioOf: 'delta / whole document',
        target: '≤ 2 KiB',
        met: m.deltaBytes <= 2048,
        note: `whole document ${m.wholeBytes} bytes`,
      },
    );
  }
  return out;
}

/** Rows of `items` for a document of about 2 MB of JSON text. */
const ROWS_2MB = 23_000;

/** One userdb_patch of `ops` as the owner; its time in ms. */
async function timePatch(db: Database, uid: string, token: string, ops: unknown[]): Promise<number> {
  return asUser(db, uid, async (tx) => {
    const t0 = now();
    const r = await tx.query<{ r: { applied: boolean } }>(
      'select public.userdb_patch($1::jsonb, $2::timestamptz, null, null) as r',
      [JSON.stringify(ops), token],
    );
    const elapsed = now() - t0;
    if (r[0]?.r.applied !== true) throw new Error('userdb_patch did not apply');
    return elapsed;
  });
}

/** The long batches on a 2 MB document, on a database set up by `scripts`. */
async function batches(
  db: Database,
  scripts: string[],
  nOps: number,
): Promise<{ replace: number; members: number; bytes: number }> {
  for (const script of scripts) await db.exec(script);
  await db.exec(RAISE_LIMIT);
  const doc = { ...makeDoc(ROWS_2MB), meta: {} };
  const a = await userWithDoc(db, doc);
  const replace = await timePatch(
    db,
    a.uid,
    a.token,
    Array.from({ length: nOps }, (_, i) => ({ op: 'replace', path: '/version', value: i })),
  );
  const b = await userWithDoc(db, doc);
  const members = await timePatch(
    db,
    b.uid,
    b.token,
    Array.from({ length: nOps }, (_, i) => ({ op: 'add', path: `/meta/k${i}`, value: i })),
  );
  return { replace, members, bytes: JSON.stringify(doc).length };
}

/** The change log of one user after `n` one-op changes (default retention). */
async function logAfter(db: Database, n: number): Promise<{ entries: number; bytes: number; disk: number }> {
  const { uid, token: t0 } = await userWithDoc(db, makeDoc(1000));
  let token = t0;
  for (let i = 0; i < n; i++) {
    const ops = [{ op: 'replace', path: `/tables/items/rows/${i % 1000}/1`, value: `change ${i}` }];
    const r = await asUser(db, uid, (tx) =>
      tx.query<{ r: { updated_at: string } }>(
        'select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4) as r',
        [JSON.stringify(ops), token, 'bench-log', i + 1],
      ),
    );
    token = r[0]?.r.updated_at as string;
  }
  const s = await db.query<{ n: number; b: number; d: number }>(
    `select count(*)::int as n, coalesce(sum(bytes), 0)::bigint::float8 as b,
            pg_total_relation_size('userdb.changes')::float8 as d
       from userdb.changes where user_id = $1`,
    [uid],
  );
  return { entries: Number(s[0]?.n), bytes: Number(s[0]?.b), disk: Number(s[0]?.d) };
}

/** Before/after figures of the delta migration on one engine; `fresh` opens an empty database. */
async function deltaFigures(
  name: string,
  fresh: <T>(fn: (db: Database) => Promise<T>) => Promise<T>,
  options: ServerOptions,
): Promise<Figure[]> {
  const nOps = options.quick ? 1000 : 10_000;
  const nChanges = options.quick ? 1000 : 10_000;
  options.log(`7: ${nOps}-op batches on a 2 MB document on ${name}, before the delta migration`);
  const before = await fresh((db) => batches(db, schemaScripts(1), nOps));
  options.log(`7: ${nOps}-op batches on a 2 MB document on ${name}, after`);
  const after = await fresh((db) => batches(db, schemaScripts(), nOps));
  options.log(`7: change log after ${nChanges} changes on ${name}`);
  const log = await fresh(async (db) => {
    for (const script of schemaScripts()) await db.exec(script);
    return logAfter(db, nChanges);
  });
  const single = (v: number) => ({ n: 1, p50: v, p99: v, mean: v, min: v, max: v });
  const mb = `${(after.bytes / 1024 / 1024).toFixed(2)} MiB document`;
  return [
    timing(7, `${name}: ${nOps} replace /version in one userdb_patch, before`, single(before.replace), {
      note: mb,
    }),
    timing(7, `${name}: ${nOps} replace /version in one userdb_patch, after`, single(after.replace), {
      ratio: before.replace / after.replace,
      ratioOf: 'before / after',
      note: mb,
    }),
    timing(7, `${name}: ${nOps} new object members in one userdb_patch, before`, single(before.members), {
      note: mb,
    }),
    timing(7, `${name}: ${nOps} new object members in one userdb_patch, after`, single(after.members), {
      ratio: before.members / after.members,
      ratioOf: 'before / after',
      note: mb,
    }),
    {
      workload: 7,
      name: `${name}: change log after ${nChanges} one-op changes (default retention), bytes`,
      unit: 'bytes',
      value: log.bytes,
      note: `${log.entries} entries kept; userdb.changes on disk ${log.disk} bytes`,
    },
    {
      workload: 7,
      name: `${name}: change log after ${nChanges} one-op changes (default retention), entries`,
      unit: 'count',
      value: log.entries,
    },
  ];
}

/** Runs workload 7 on PGlite, and on PostgreSQL when `databaseUrl` is set. */
export async function serverWorkload(options: ServerOptions): Promise<Figure[]> {
  const sizes = options.quick ? [1000, 10_000] : [1000, 10_000, 100_000];
  const figures: Figure[] = [];
  const lite = await openDatabase('memory');
  try {
    figures.push(...(await onEngine('PGlite', lite, options, sizes)));
  } finally {
    await lite.close();
  }
  figures.push(
    ...(await deltaFigures(
      'PGlite',
      async (fn) => {
        const db = await openDatabase('memory');
        try {
          return await fn(db);
        } finally {
          await db.close();
        }
      },
      options,
    )),
  );
  if (options.databaseUrl === undefined) {
    figures.push(notMeasured(7, 'PostgreSQL: userdb_patch', 'DATABASE_URL not set'));
    return figures;
  }
  const name = `userdb_bench_${randomBytes(6).toString('hex')}`;
  const maintenance = new pg.Client({ connectionString: options.databaseUrl });
  await maintenance.connect();
  await maintenance.query(`create database ${name}`);
  const target = new URL(options.databaseUrl);
  target.pathname = `/${name}`;
  try {
    const server = await openDatabase(target.toString());
    try {
      const version = await server.query<{ v: string }>(`select current_setting('server_version') as v`);
      const pgName = `PostgreSQL ${version[0]?.v ?? ''}`.trim();
      figures.push(...(await onEngine(pgName, server, options, sizes)));
      figures.push(
        ...(await deltaFigures(
          pgName,
          async (fn) => {
            const fresh = `userdb_bench_${randomBytes(6).toString('hex')}`;
            await maintenance.query(`create database ${fresh}`);
            const url = new URL(options.databaseUrl as string);
            url.pathname = `/${fresh}`;
            const db = await openDatabase(url.toString());
            try {
              return await fn(db);
            } finally {
              await db.close();
              await maintenance.query(`drop database if exists ${fresh} with (force)`);
            }
          },
          options,
        )),
      );
    } finally {
      await server.close();
    }
  } finally {
    await maintenance.query(`drop database if exists ${name} with (force)`);
    await maintenance.end();
  }
  return figures;
}
