/**
 * Prepares a database for the dev server: the Supabase-like bootstrap, the auth
 * session tables, every `supabase/migrations/*.sql` not applied yet (recorded in
 * `supabase_migrations.schema_migrations`, as the Supabase CLI records them), then
 * the Realtime change capture.
 *
 * @example
 * ```ts
 * const db = await openDatabase('memory');
 * const { applied } = await prepareDatabase(db, { migrationsDirs: [defaultMigrationsDir()] });
 * ```
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Database, isPostgresError } from './database.js';

/** The directory of the dev server's own SQL (src/devserver/sql, copied to dist/devserver/sql). */
export const sqlDir: string = fileURLToPath(new URL('./sql/', import.meta.url));

/**
 * userdb's own `supabase/migrations`, found from the package root (works from src and dist).
 *
 * @example
 * ```ts
 * console.log(defaultMigrationsDir()); // …/userdb/supabase/migrations
 * ```
 */
export function defaultMigrationsDir(): string {
  return fileURLToPath(new URL('../../supabase/migrations/', import.meta.url));
}

/**
 * Options of {@link prepareDatabase}.
 *
 * @example
 * ```ts
 * const options: PrepareOptions = { migrationsDirs: [defaultMigrationsDir(), 'test/fixtures/migrations'] };
 * ```
 */
export interface PrepareOptions {
  /** Directories whose `*.sql` files are applied in file-name order, each once. */
  migrationsDirs: readonly string[];
}

/**
 * What {@link prepareDatabase} did.
 *
 * @example
 * ```ts
 * const { applied } = await prepareDatabase(db, options); // ['20261127000000'] the first time, [] after
 * ```
 */
export interface PrepareResult {
  /** Versions (file-name prefixes) applied by this call. */
  applied: string[];
}

function readSql(name: string): string {
  return readFileSync(join(sqlDir, name), 'utf8');
}

interface MigrationFile {
  version: string;
  name: string;
  path: string;
}

function listMigrations(dirs: readonly string[]): MigrationFile[] {
  const files: MigrationFile[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.sql')) continue;
      const match = /^([^_]+)_?(.*)\.sql$/.exec(file);
      files.push({ version: match?.[1] ?? file, name: match?.[2] ?? '', path: join(dir, file) });
    }
  }
  return files.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
}

/** Lock key serializing dev servers that prepare one database at the same time. */
const PREPARE_LOCK = 4242424242;
/** Errors of idempotent DDL racing with another server (roles are shared by every database of a cluster). */
const RACE_CODES = new Set(['23505', '42710', '42P06', '42P07', '40P01']);

/** Runs an idempotent script in one transaction, serialized per database, retried when it lost a race. */
async function runScript(db: Database, sql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock($1)', [PREPARE_LOCK]);
        await tx.exec(sql);
      });
      return;
    } catch (error) {
      if (attempt >= 5 || !isPostgresError(error) || !RACE_CODES.has(error.code)) throw error;
    }
  }
}

/**
 * Applies the bootstrap and every pending migration; idempotent.
 *
 * @example
 * ```ts
 * await prepareDatabase(db, { migrationsDirs: ['supabase/migrations'] });
 * ```
 */
export async function prepareDatabase(db: Database, options: PrepareOptions): Promise<PrepareResult> {
  await runScript(db, readSql('bootstrap.sql'));
  await runScript(db, readSql('auth.sql'));
  await runScript(
    db,
    `create schema if not exists supabase_migrations;
     create table if not exists supabase_migrations.schema_migrations (
       version text not null primary key,
       statements text[],
       name text
     );`,
  );
  const applied: string[] = [];
  for (const migration of listMigrations(options.migrationsDirs)) {
    const sql = readFileSync(migration.path, 'utf8');
    const ran = await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [PREPARE_LOCK]);
      const done = await tx.query('select 1 from supabase_migrations.schema_migrations where version = $1', [
        migration.version,
      ]);
      if (done.length > 0) return false;
      await tx.exec(sql);
      await tx.query(
        'insert into supabase_migrations.schema_migrations (version, statements, name) values ($1, array[$2::text], $3)',
        [migration.version, sql, migration.name],
      );
      return true;
    });
    if (ran) applied.push(migration.version);
  }
  await runScript(db, readSql('realtime.sql'));
  return { applied };
}
