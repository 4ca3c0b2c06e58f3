/**
 * Faster boots for in-memory servers: a freshly prepared PGlite (bootstrap and
 * migrations applied, nothing else) is dumped once into the OS temp directory, keyed by
 * the PGlite version and the exact SQL, and later in-memory servers start from that dump
 * instead of running initdb. `prepareDatabase` still runs after loading (it is
 * idempotent and cheap), so a dump can only save time, never change the outcome.
 *
 * @example
 * ```ts
 * const db = await openPreparedMemoryDatabase([defaultMigrationsDir()]);
 * ```
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Database, dumpMemoryDatabase, openDatabase, openMemoryDatabaseFrom } from './database.js';
import { prepareDatabase, sqlDir } from './migrate.js';

/** Where the dumps live; `USERDB_DEVSERVER_CACHE=off` disables the cache. */
function cacheDir(): string | undefined {
  const setting = process.env.USERDB_DEVSERVER_CACHE;
  if (setting === 'off' || setting === '0') return undefined;
  return setting !== undefined && setting !== '' ? setting : join(tmpdir(), 'userdb-devserver-cache');
}

/**
 * The installed PGlite's version (dumps are only valid for the version that wrote them);
 * `'unknown'` if it cannot be found.
 *
 * @example
 * ```ts
 * pgliteVersion(); // '0.5.17'
 * ```
 */
export function pgliteVersion(): string {
  const starts: string[] = [];
  try {
    starts.push(dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))));
  } catch {
    // import.meta.resolve is missing under some loaders; fall back to the working directory.
  }
  starts.push(join(process.cwd(), 'node_modules', '@electric-sql', 'pglite'));
  for (const start of starts) {
    let dir = start;
    for (let i = 0; i < 4; i++) {
      const file = join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === '@electric-sql/pglite' && typeof pkg.version === 'string') return pkg.version;
      }
      dir = dirname(dir);
    }
  }
  return 'unknown';
}

/** A hash of everything that shapes a freshly prepared database. */
function cacheKey(migrationsDirs: readonly string[]): string {
  const hash = createHash('sha256');
  hash.update(`pglite ${pgliteVersion()}\n`);
  for (const file of ['bootstrap.sql', 'auth.sql', 'realtime.sql']) {
    hash.update(file);
    hash.update(readFileSync(join(sqlDir, file)));
  }
  for (const dir of migrationsDirs) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      hash.update(file);
      hash.update(readFileSync(join(dir, file)));
    }
  }
  return hash.digest('hex').slice(0, 32);
}

/**
 * Opens an in-memory PGlite with the bootstrap and migrations applied, from the boot
 * cache when it has a matching dump (writing one when it has not).
 *
 * @example
 * ```ts
 * const db = await openPreparedMemoryDatabase(['supabase/migrations']);
 * ```
 */
export async function openPreparedMemoryDatabase(migrationsDirs: readonly string[]): Promise<Database> {
  const dir = cacheDir();
  const file = dir === undefined ? undefined : join(dir, `${cacheKey(migrationsDirs)}.tar.gz`);
  if (file !== undefined && existsSync(file)) {
    try {
      const db = await openMemoryDatabaseFrom(new Blob([readFileSync(file)]));
      try {
        await prepareDatabase(db, { migrationsDirs });
        return db;
      } catch (error) {
        await db.close().catch(() => undefined);
        throw error;
      }
    } catch {
      rmSync(file, { force: true }); // unreadable or unusable: rebuild it below
    }
  }
  const db = await openDatabase('memory');
  try {
    await prepareDatabase(db, { migrationsDirs });
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  if (file !== undefined && dir !== undefined) {
    try {
      const dump = await dumpMemoryDatabase(db);
      if (dump !== undefined) {
        mkdirSync(dir, { recursive: true });
        const partial = `${file}.${process.pid}.${Date.now()}.partial`;
        writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
        renameSync(partial, file); // atomic: concurrent boots never read half a dump
      }
    } catch {
      // The cache is an optimisation only.
    }
  }
  return db;
}
