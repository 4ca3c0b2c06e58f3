import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPreparedMemoryDatabase, pgliteVersion } from '../../src/devserver/boot-cache.js';
import { defaultMigrationsDir } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS } from './helpers.js';

let cache: string;
let extra: string;
const saved = process.env.USERDB_DEVSERVER_CACHE;

beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'userdb-boot-cache-'));
  extra = mkdtempSync(join(tmpdir(), 'userdb-extra-migrations-'));
  process.env.USERDB_DEVSERVER_CACHE = cache;
});

afterAll(() => {
  if (saved === undefined) delete process.env.USERDB_DEVSERVER_CACHE;
  else process.env.USERDB_DEVSERVER_CACHE = saved;
  rmSync(cache, { recursive: true, force: true });
  rmSync(extra, { recursive: true, force: true });
});

it('keys dumps by the installed PGlite version', () => {
  expect(pgliteVersion()).toMatch(/^\d+\.\d+\.\d+/);
});

const dumps = () => readdirSync(cache).filter((f) => f.endsWith('.tar.gz'));

it(
  'boots from a dump of a freshly prepared database, keyed by the SQL, and survives a broken dump',
  async () => {
    const first = await openPreparedMemoryDatabase([defaultMigrationsDir()]);
    await first.close();
    expect(dumps()).toHaveLength(1);

    const second = await openPreparedMemoryDatabase([defaultMigrationsDir()]);
    const migrations = await second.query('select version from supabase_migrations.schema_migrations');
    expect(migrations.length).toBeGreaterThan(0);
    expect(
      await second.query("select 1 from pg_catalog.pg_roles where rolname = 'authenticated'"),
    ).toHaveLength(1);
    await second.close();
    expect(dumps()).toHaveLength(1);

    // Other SQL, another dump; the database has the extra migration either way.
    writeFileSync(
      join(extra, '29990101000000_extra.sql'),
      'create table public.extra_fixture (id int primary key);',
    );
    const third = await openPreparedMemoryDatabase([defaultMigrationsDir(), extra]);
    expect(
      await third.query("select 1 from pg_catalog.pg_tables where tablename = 'extra_fixture'"),
    ).toHaveLength(1);
    await third.close();
    expect(dumps()).toHaveLength(2);

    // A damaged dump is replaced, not trusted.
    for (const file of dumps()) writeFileSync(join(cache, file), 'not a tarball');
    const fourth = await openPreparedMemoryDatabase([defaultMigrationsDir()]);
    expect((await fourth.query('select version from supabase_migrations.schema_migrations')).length).toBe(
      migrations.length,
    );
    await fourth.close();
    const gzip = dumps().filter((f) =>
      readFileSync(join(cache, f))
        .subarray(0, 2)
        .equals(Buffer.from([0x1f, 0x8b])),
    );
    expect(gzip).toHaveLength(1);
  },
  BOOT_TIMEOUT_MS,
);
