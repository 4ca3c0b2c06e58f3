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

/** A `LISTEN` of the dev server, kept so that it survives a reopened PGlite. */
interface Subscription {
  channel: string;
  onNotify: (payload: string) => void;
  unlisten: () => Promise<void>;
}

/**
 * Whether `error` says the engine itself failed (not the statement): an internal error
 * (SQLSTATE class XX, e.g. PGlite's `bad buffer ID` after its stack overflowed) or a
 * WebAssembly trap.
 */
function isEngineFailure(error: unknown): boolean {
  if (error instanceof WebAssembly.RuntimeError) return true;
  if (!isPostgresError(error) || !error.code.startsWith('XX')) return false;
  // raised on purpose by a function (`raise exception using errcode = 'XX000'`): the statement's
  // error, not the engine's (the connection is still checked like after any other error)
  const where = (error as { where?: unknown }).where;
  return !(typeof where === 'string' && /\bat RAISE\b/.test(where));
}

class PGliteDatabase implements Database {
  readonly kind = 'pglite';
  #db: PGlite;
  /** The data directory, or `undefined` in memory. */
  readonly #dataDir: string | undefined;
  readonly #mutex = new Mutex();
  readonly #subscriptions = new Set<Subscription>();
  #closed = false;
  #recoveries = 0;

  constructor(db: PGlite, dataDir: string | undefined) {
    this.#db = db;
    this.#dataDir = dataDir;
  }

  /** How many times the engine was found broken and reopened. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /**
   * Runs `fn` alone on the connection. After any failure the connection is checked before
   * the next caller gets it: an engine that failed internally, or that is stuck in an
   * aborted transaction, is reopened from its committed data, so one bad statement cannot
   * wedge the server.
   */
  #run<T>(fn: (db: PGlite) => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      try {
        return await fn(this.#db);
      } catch (error) {
        await this.#checkAfter(error);
        throw error;
      }
    });
  }

  async #checkAfter(error: unknown): Promise<void> {
    if (this.#closed) return;
    let healthy = !isEngineFailure(error);
    if (healthy) {
      try {
        await this.#db.query('select 1');
      } catch {
        healthy = false;
      }
    }
    if (healthy) return;
    const reason = error instanceof Error ? error.message : String(error);
    try {
      await this.#reopen();
      process.emitWarning(
        `PGlite failed (${reason}); it was reopened from its committed data`,
        'UserdbDevServerWarning',
      );
    } catch (reopenError) {
      process.emitWarning(
        `PGlite failed (${reason}) and could not be reopened: ${String(reopenError)}`,
        'UserdbDevServerWarning',
      );
    }
  }

  /**
   * Replaces a broken PGlite by a fresh one holding every committed transaction: in a
   * directory, the old instance is closed and the directory opened again (PostgreSQL's
   * crash recovery replays the WAL); in memory, the data directory is dumped from the
   * broken instance (the files of an in-memory PGlite outlive its backend) and loaded
   * into a new one, with the same recovery. Every `LISTEN` is registered again.
   */
  async #reopen(): Promise<void> {
    const old = this.#db;
    const dump = this.#dataDir === undefined ? await old.dumpDataDir('none') : undefined;
    await withTimeout(old.close(), 10_000).catch(() => undefined);
    // The constructor of the running instance: the engine is an optional peer, loaded once.
    const Engine = old.constructor as typeof PGlite;
    const next = dump === undefined ? new Engine(this.#dataDir) : new Engine({ loadDataDir: dump });
    await next.waitReady;
    this.#db = next;
    this.#recoveries++;
    for (const subscription of this.#subscriptions) {
      subscription.unlisten = await next.listen(subscription.channel, subscription.onNotify);
    }
  }

  query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.#run(async (db) => (await db.query<R>(sql, [...params])).rows);
  }

  exec(sql: string): Promise<void> {
    return this.#run(async (db) => {
      await db.exec(sql);
    });
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#run((db) =>
      db.transaction((tx) =>
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
    return this.#run(async (db) => {
      const subscription: Subscription = { channel, onNotify, unlisten: await db.listen(channel, onNotify) };
      this.#subscriptions.add(subscription);
      return () =>
        this.#mutex.run(async () => {
          if (!this.#subscriptions.delete(subscription)) return;
          await subscription.unlisten();
        });
    });
  }

  close(): Promise<void> {
    return this.#mutex.run(async () => {
      this.#closed = true;
      this.#subscriptions.clear();
      await this.#db.close();
    });
  }

  dump(): Promise<Blob> {
    return this.#run((db) => db.dumpDataDir('gzip'));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Whether `error` says the connection itself ended (its backend was terminated or the
 * server shut down), rather than that a statement failed.
 */
function isConnectionLoss(error: unknown): boolean {
  if (isPostgresError(error)) return /^(57P0[123]|08...)$/.test(error.code);
  return (
    error instanceof Error && /Connection terminated|ECONNRESET|EPIPE|not queryable/i.test(error.message)
  );
}

/** A transaction whose connection was lost before COMMIT: nothing of it was committed. */
class LostBeforeCommit extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  readonly #pg: typeof pg;
  readonly #pool: pg.Pool;
  readonly #url: string;
  #listener: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  readonly #handlers = new Set<{ channel: string; onNotify: (payload: string) => void }>();
  #closed = false;
  #reconnecting = false;

  constructor(url: string, driver: typeof pg) {
    this.#pg = driver;
    this.#url = url;
    this.#pool = new driver.Pool({ connectionString: url, max: 10 });
    // An idle client that loses its connection must not crash the process.
    this.#pool.on('error', () => undefined);
  }

  // A pooled connection whose backend ended while idle (server restart, terminated
  // backend) fails the next statement sent on it before that statement runs: such a
  // statement is sent once more on a fresh connection.
  async query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    try {
      return (await this.#pool.query(sql, [...params])).rows as R[];
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      return (await this.#pool.query(sql, [...params])).rows as R[];
    }
  }

  async exec(sql: string): Promise<void> {
    await this.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await this.#transaction(fn);
    } catch (error) {
      // Lost before COMMIT was sent: the server rolled the transaction back, run it again.
      if (!(error instanceof LostBeforeCommit)) throw error;
      try {
        return await this.#transaction(fn);
      } catch (again) {
        throw again instanceof LostBeforeCommit ? again.original : again;
      }
    }
  }

  async #transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken = false;
    let committing = false;
    // A connection lost while checked out (the backend terminated between two statements of a
    // transaction kept open, e.g. Realtime delivery's) emits 'error' outside any query: without a
    // listener that would end the process. The next statement fails and the client is discarded.
    const onLost = () => {
      broken = true;
    };
    client.on('error', onLost);
    try {
      await client.query('begin');
      const result = await fn({
        query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) =>
          (await client.query(sql, [...params])).rows as R[],
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
      committing = true;
      await client.query('commit');
      return result;
    } catch (error) {
      try {
        await client.query('rollback');
      } catch {
        broken = true;
      }
      if (!committing && isConnectionLoss(error)) {
        broken = true;
        throw new LostBeforeCommit(error);
      }
      throw error;
    } finally {
      client.off('error', onLost);
      client.release(broken);
    }
  }

  /**
   * LISTENs on one connection of its own. When that connection dies (the server
   * restarted, the backend was terminated), it is opened again with every channel, after
   * 50 ms and then up to every 2 s until it succeeds or the database is closed;
   * notifications sent while it was down are lost, as they are for any PostgreSQL client.
   */
  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const entry = { channel, onNotify };
    this.#handlers.add(entry);
    try {
      const client = await this.#listenerClient();
      await client.query(`listen ${this.#pg.escapeIdentifier(channel)}`);
    } catch (error) {
      this.#handlers.delete(entry);
      throw error;
    }
    return async () => {
      if (!this.#handlers.delete(entry)) return;
      if ([...this.#handlers].some((h) => h.channel === channel)) return;
      await this.#listener?.query(`unlisten ${this.#pg.escapeIdentifier(channel)}`).catch(() => undefined);
    };
  }

  #listenerClient(): Promise<pg.Client> {
    this.#connecting ??= (async () => {
      const client = new this.#pg.Client({ connectionString: this.#url });
      client.on('notification', (message) => {
        for (const h of this.#handlers) if (h.channel === message.channel) h.onNotify(message.payload ?? '');
      });
      try {
        await client.connect();
      } catch (error) {
        client.on('error', () => undefined);
        throw error;
      }
      let lost = false;
      const onLost = () => {
        if (lost) return;
        lost = true;
        if (this.#listener === client) this.#listener = undefined;
        client.end().catch(() => undefined);
        this.#reconnect(50);
      };
      client.on('error', onLost);
      client.on('end', onLost);
      this.#listener = client;
      return client;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #reconnect(delayMs: number): void {
    if (this.#closed || this.#handlers.size === 0 || this.#reconnecting) return;
    this.#reconnecting = true;
    const timer = setTimeout(async () => {
      this.#reconnecting = false;
      if (this.#closed || this.#listener !== undefined) return;
      try {
        const client = await this.#listenerClient();
        const channels = new Set([...this.#handlers].map((h) => h.channel));
        for (const channel of channels) await client.query(`listen ${this.#pg.escapeIdentifier(channel)}`);
      } catch {
        // A lost connection schedules its own retry; a failed connect retries here.
        this.#reconnect(Math.min(2000, delayMs * 2));
      }
    }, delayMs);
    timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
    await this.#connecting?.catch(() => undefined);
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
  return new PGliteDatabase(pglite, undefined);
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
  return new PGliteDatabase(pglite, location === 'memory' ? undefined : location);
}
