/**
 * Workload 7: the server side of a push. `userdb_patch` with one one-field `replace` op, called
 * directly in SQL as the document's owner (role `authenticated`, JWT claims set as PostgREST does),
 * at 1k/10k/100k rows, on PGlite and — when DATABASE_URL is set — on a PostgreSQL server (in a
 * throwaway database). The time is the statement's; it grows with the document because Postgres
 * rewrites the whole JSONB value on every update. The floor is that rewrite alone: one superuser
 * `UPDATE … set db = jsonb_set(db, path, value)` of one field. For comparison, the naive write of
 * SEED.md (`userdb_set` of the whole `rows` array) is timed on the same documents.
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

function schemaScripts(): string[] {
  const dir = new URL('supabase/migrations/', root);
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
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
  for (let i = 0; i < warmup + patchRuns; i++) {
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
  return { patch, floor, naive, textBytes: Number(info[0]?.b) };
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
    );
  }
  return out;
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
      figures.push(...(await onEngine(`PostgreSQL ${version[0]?.v ?? ''}`.trim(), server, options, sizes)));
    } finally {
      await server.close();
    }
  } finally {
    await maintenance.query(`drop database if exists ${name} with (force)`);
    await maintenance.end();
  }
  return figures;
}
