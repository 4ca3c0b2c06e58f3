/**
 * One small interface over the two engines the dev server runs on: PGlite in this
 * process (in memory or in a directory) and a PostgreSQL server reached through `pg`.
 *
 * @example
 * ```ts
 * const db = await openDatabase('memory');
 * const rows = await db.transaction((tx) => tx.query('select 1 as one'));
 * await db.close();
 * ```
 */
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { loadPeers } from './peers.js';

/**
 * A row as returned by a query. Queries in the dev server select text, numbers and booleans only.
 *
 * @example
 * ```ts
 * const rows: Row[] = await db.query('select 1::int as one');
 * ```
 */
export type Row = Record<string, unknown>;

/**
 * Something that runs SQL: the database itself or an open transaction.
 *
 * @example
 * ```ts
 * async function count(q: Queryable) { return (await q.query<{ n: number }>('select count(*)::int as n from auth.users'))[0]!.n; }
 * ```
 */
export interface Queryable {
  /** Runs one statement with `$n` parameters (sent as text, typed by the server). */
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a script of several statements without parameters. */
  exec(sql: string): Promise<void>;
}

/**
 * A database connection (PGlite) or pool (PostgreSQL).
 *
 * @example
 * ```ts
 * await server.db.transaction(async (tx) => {
 *   await tx.query("select set_config('role', 'authenticated', true)");
 *   return tx.query('select * from public.user_databases');
 * });
 * ```
 */
export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to `NOTIFY channel`; resolves to the unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** A Postgres error as both drivers report it. */
export interface PostgresErrorFields {
  code: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/**
 * Whether `error` came from the database server (it carries a five-character SQLSTATE).
 *
 * @example
 * ```ts
 * try { await db.query('select 1/0'); } catch (e) { if (isPostgresError(e)) console.log(e.code); }
 * ```
 */
export function isPostgresError(error: unknown): error is Error & PostgresErrorFields {
  return (
    error instanceof Error &&
    typeof (error as { code?: unknown }).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((error as unknown as { code: string }).code)
  );
}

/** Serializes work on PGlite's single connection. */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

class PGliteDatabase implements Database {
  readonly kind = 'pglite';
  readonly #db: PGlite;
  readonly #mutex = new Mutex();

  constructor(db: PGlite) {
    this.#db = db;
  }

  query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.#mutex.run(async () => (await this.#db.query<R>(sql, [...params])).rows);
  }

  exec(sql: string): Promise<void> {
    return this.#mutex.run(async () => {
      await this.#db.exec(sql);
    });
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#mutex.run(() =>
      this.#db.transaction((tx) =>
        fn({
          query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) =>
            (await tx.query<R>(sql, [...params])).rows,
          exec: async (sql: string) => {
            await tx.exec(sql);
          },
        }),
      ),
    );
  }

  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    return this.#mutex.run(async () => {
      const unlisten = await this.#db.listen(channel, onNotify);
      return () => this.#mutex.run(() => unlisten());
    });
  }

  close(): Promise<void> {
    return this.#mutex.run(() => this.#db.close());
  }

  dump(): Promise<Blob> {
    return this.#mutex.run(() => this.#db.dumpDataDir('gzip'));
  }
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  readonly #pg: typeof pg;
  readonly #pool: pg.Pool;
  readonly #url: string;
  #listener: pg.Client | undefined;

  constructor(url: string, driver: typeof pg) {
    this.#pg = driver;
    this.#url = url;
    this.#pool = new driver.Pool({ connectionString: url, max: 10 });
    // An idle client that loses its connection must not crash the process.
    this.#pool.on('error', () => undefined);
  }

  async query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.#pool.query(sql, [...params])).rows as R[];
  }

  async exec(sql: string): Promise<void> {
    await this.#pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query('begin');
      const result = await fn({
        query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) =>
          (await client.query(sql, [...params])).rows as R[],
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
      await client.query('commit');
      return result;
    } catch (error) {
      try {
        await client.query('rollback');
      } catch {
        broken = true;
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    if (this.#listener === undefined) {
      const client = new this.#pg.Client({ connectionString: this.#url });
      client.on('error', () => undefined);
      await client.connect();
      this.#listener = client;
    }
    const client = this.#listener;
    const handler = (message: pg.Notification) => {
      if (message.channel === channel) onNotify(message.payload ?? '');
    };
    client.on('notification', handler);
    await client.query(`listen ${this.#pg.escapeIdentifier(channel)}`);
    return async () => {
      client.off('notification', handler);
      await client.query(`unlisten ${this.#pg.escapeIdentifier(channel)}`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.#pool.end();
  }
}

/**
 * Opens an in-memory PGlite from a data-directory dump (a tarball made by {@link dumpMemoryDatabase}).
 *
 * @example
 * ```ts
 * const db = await openMemoryDatabaseFrom(new Blob([readFileSync(file)]));
 * ```
 */
export async function openMemoryDatabaseFrom(dump: Blob): Promise<Database> {
  const { PGlite } = (await loadPeers(['@electric-sql/pglite']))['@electric-sql/pglite'];
  const pglite = new PGlite({ loadDataDir: dump });
  await pglite.waitReady;
  return new PGliteDatabase(pglite);
}

/**
 * Dumps an in-memory PGlite database's data directory as a gzipped tarball, or
 * `undefined` for a PostgreSQL database.
 *
 * @example
 * ```ts
 * const dump = await dumpMemoryDatabase(db);
 * ```
 */
export async function dumpMemoryDatabase(db: Database): Promise<Blob | undefined> {
  return db instanceof PGliteDatabase ? db.dump() : undefined;
}

/**
 * Opens the database named by `location`: `'memory'` (PGlite in memory), a
 * `postgres://` / `postgresql://` URL (a PostgreSQL server), or a directory (PGlite
 * persisted there).
 *
 * @example
 * ```ts
 * const db = await openDatabase(process.env.DATABASE_URL ?? 'memory');
 * ```
 */
export async function openDatabase(location: string): Promise<Database> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    const db = new PostgresDatabase(location, (await loadPeers(['pg'])).pg.default);
    await db.query('select 1');
    return db;
  }
  const { PGlite } = (await loadPeers(['@electric-sql/pglite']))['@electric-sql/pglite'];
  const pglite = location === 'memory' ? new PGlite() : new PGlite(location);
  await pglite.waitReady;
  return new PGliteDatabase(pglite);
}
