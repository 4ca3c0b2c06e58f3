/**
 * The SQL engines the contract suite runs on: PGlite (always) and a real PostgreSQL
 * server when `DATABASE_URL` is set. Each engine gets a fresh database with the
 * Supabase-like bootstrap and every migration of supabase/migrations applied.
 *
 * @example
 * ```ts
 * const engine = await pglite().open();
 * const doc = await engine.asUser(uid, (q) => q.one('select public.userdb_init() as r'));
 * await engine.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The bootstrap, then the migrations in file-name order. */
export function schemaScripts(): string[] {
  const dir = join(root, 'supabase', 'migrations');
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
  return [readFileSync(join(root, 'src', 'devserver', 'sql', 'bootstrap.sql'), 'utf8'), ...migrations];
}

/** A row as returned by a driver. */
export type Row = Record<string, unknown>;

/** Runs statements inside one transaction. */
export interface Queryable {
  /** All rows of a (parameterised, single-statement) query. */
  rows<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>;
  /** The first column of the one row of a query. */
  one<T = unknown>(sql: string, params?: unknown[]): Promise<T>;
  /** Several statements, no parameters. */
  exec(sql: string): Promise<void>;
}

/** The role a block runs as, and the JWT claims it carries. */
export interface Acting {
  role: 'anon' | 'authenticated' | 'service_role';
  /** request.jwt.claims; omitted: `{sub, role}` from the user id and role. */
  claims?: Record<string, unknown>;
  /** Roll back instead of committing. */
  rollback?: boolean;
  /** Statements run as the superuser inside the transaction, before switching role. */
  before?: string;
}

/** An open engine: a fresh database with the schema applied. */
export interface Engine {
  readonly name: string;
  /** True when independent connections can run at the same time (a real server). */
  readonly concurrent: boolean;
  /** A transaction as the superuser. */
  admin<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** A transaction as `role` (default authenticated) with the user's JWT claims. */
  asUser<T>(userId: string | null, fn: (q: Queryable) => Promise<T>, acting?: Partial<Acting>): Promise<T>;
  /** Runs the scripts it was opened with again. */
  reapplySchema(): Promise<void>;
  close(): Promise<void>;
}

/** A way to open an {@link Engine}. */
export interface EngineFactory {
  readonly name: string;
  /** A fresh database with `scripts` applied (default: {@link schemaScripts}). */
  open(scripts?: readonly string[]): Promise<Engine>;
}

interface Driver {
  query(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
  exec(sql: string): Promise<void>;
}

function queryable(d: Driver): Queryable {
  return {
    async rows<T extends Row = Row>(sql: string, params: unknown[] = []) {
      return (await d.query(sql, params)).rows as T[];
    },
    async one<T = unknown>(sql: string, params: unknown[] = []) {
      const { rows } = await d.query(sql, params);
      if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}: ${sql}`);
      const row = rows[0]!;
      return row[Object.keys(row)[0]!] as T;
    },
    exec: (sql: string) => d.exec(sql),
  };
}

async function actAs(q: Queryable, userId: string | null, acting: Partial<Acting>): Promise<void> {
  const role = acting.role ?? 'authenticated';
  if (acting.before !== undefined) await q.exec(acting.before);
  await q.exec(`set local role ${role}`);
  const claims = acting.claims ?? (userId === null ? { role } : { sub: userId, role });
  await q.rows(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify(claims)]);
}

/** PGlite in memory: one connection, statements run one at a time. */
export function pglite(): EngineFactory {
  return {
    name: 'PGlite',
    async open(scripts = schemaScripts()) {
      const db = new PGlite();
      const apply = async () => {
        for (const script of scripts) await db.exec(script);
      };
      await apply();
      const run = <T>(fn: (q: Queryable) => Promise<T>, rollback: boolean): Promise<T> =>
        db.transaction(async (tx) => {
          const result = await fn(
            queryable({
              query: (sql, params) => tx.query<Row>(sql, params),
              exec: async (sql) => {
                await tx.exec(sql);
              },
            }),
          );
          if (rollback) await tx.rollback();
          return result;
        });
      return {
        name: 'PGlite',
        concurrent: false,
        admin: (fn) => run(fn, false),
        asUser: (userId, fn, acting = {}) =>
          run(async (q) => {
            await actAs(q, userId, acting);
            return fn(q);
          }, acting.rollback ?? false),
        reapplySchema: apply,
        close: () => db.close(),
      };
    },
  };
}

/**
 * A real server at `url` (a superuser connection): creates `userdb_test_<random>`,
 * applies the schema there, and drops it on close.
 */
export function server(url: string): EngineFactory {
  return {
    name: 'PostgreSQL',
    async open(scripts = schemaScripts()) {
      const dbName = `userdb_test_${randomBytes(6).toString('hex')}`;
      const maintenance = new pg.Client({ connectionString: url });
      await maintenance.connect();
      await maintenance.query(`create database ${dbName}`);
      const target = new URL(url);
      target.pathname = `/${dbName}`;
      const pool = new pg.Pool({ connectionString: target.toString(), max: 30 });
      // Keep notices (e.g. the publication's wal_level warning) out of the test output.
      pool.on('connect', (c) => {
        c.on('notice', () => {});
      });
      // Connections still closing when the database is dropped report 57P01: expected.
      pool.on('error', () => {});
      const apply = async () => {
        for (const script of scripts) await pool.query(script);
      };
      const run = async <T>(fn: (q: Queryable) => Promise<T>, rollback: boolean): Promise<T> => {
        const client = await pool.connect();
        try {
          await client.query('begin');
          const result = await fn(
            queryable({
              query: (sql, params) => client.query(sql, params),
              exec: async (sql) => {
                await client.query(sql);
              },
            }),
          );
          await client.query(rollback ? 'rollback' : 'commit');
          return result;
        } catch (e) {
          await client.query('rollback').catch(() => {});
          throw e;
        } finally {
          client.release();
        }
      };
      try {
        await apply();
      } catch (e) {
        await pool.end();
        await maintenance.query(`drop database if exists ${dbName} with (force)`);
        await maintenance.end();
        throw e;
      }
      return {
        name: 'PostgreSQL',
        concurrent: true,
        admin: (fn) => run(fn, false),
        asUser: (userId, fn, acting = {}) =>
          run(async (q) => {
            await actAs(q, userId, acting);
            return fn(q);
          }, acting.rollback ?? false),
        reapplySchema: apply,
        async close() {
          await pool.end();
          await maintenance.query(`drop database if exists ${dbName} with (force)`);
          await maintenance.end();
        },
      };
    },
  };
}

/** The engines to run on: PGlite, plus the server at DATABASE_URL when set. */
export function engines(env: NodeJS.ProcessEnv = process.env): EngineFactory[] {
  const list = [pglite()];
  if (env.DATABASE_URL) list.push(server(env.DATABASE_URL));
  return list;
}
