/**
 * The dev server's engines (@electric-sql/pglite, pg, ws) are optional peer dependencies: a package
 * installed without them imports fine, and starting the server (API or CLI) fails with a
 * MissingPeerDependencyError that names every package to install. Runs the dev server compiled
 * into a temporary node_modules/supabase-userdb that holds nothing else, in plain Node processes.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS } from './helpers.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
let app: string;
let pkg: string;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'userdb-peers-'));
  pkg = join(app, 'node_modules', 'supabase-userdb');
  const src = join(repo, 'src', 'devserver');
  const entryPoints = readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(src, f));
  await build({
    entryPoints,
    outbase: join(repo, 'src'),
    outdir: join(pkg, 'dist'),
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
  });
  cpSync(join(src, 'sql'), join(pkg, 'dist', 'devserver', 'sql'), { recursive: true });
  cpSync(join(repo, 'supabase', 'migrations'), join(pkg, 'supabase', 'migrations'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(pkg, 'package.json'));
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
}, 60_000);

afterAll(() => {
  if (app !== undefined) rmSync(app, { recursive: true, force: true });
});

/** Installs one of this repository's packages into the temporary app (a symlink). */
function provide(name: string): void {
  const target = join(app, 'node_modules', name);
  mkdirSync(join(target, '..'), { recursive: true });
  symlinkSync(join(repo, 'node_modules', name), target, 'dir');
}

/** Starts the dev server on `database` in a fresh Node process; returns what it reported. */
async function start(database: string) {
  const script = `
    const m = await import('supabase-userdb/devserver');
    try {
      const server = await m.startDevServer({ port: 0, database: ${JSON.stringify(database)} });
      await server.stop();
      console.log(JSON.stringify({ started: true }));
    } catch (e) {
      console.log(JSON.stringify({
        started: false,
        name: e.name,
        typed: e instanceof m.MissingPeerDependencyError,
        packages: e.packages,
        installCommand: e.installCommand,
        message: e.message,
      }));
    }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    started: boolean;
    name?: string;
    typed?: boolean;
    packages?: string[];
    installCommand?: string;
    message?: string;
  };
}

describe('the dev server without its optional peers', () => {
  it('imports, and starting it on PGlite names @electric-sql/pglite and ws', async () => {
    const r = await start('memory');
    expect(r).toMatchObject({
      started: false,
      name: 'MissingPeerDependencyError',
      typed: true,
      packages: ['@electric-sql/pglite', 'ws'],
      installCommand: 'npm install --save-dev @electric-sql/pglite ws',
    });
    expect(r.message).toContain('@electric-sql/pglite: the in-process PostgreSQL');
    expect(r.message).toContain('ws: the Realtime websocket endpoint');
    expect(r.message).toContain('npm install --save-dev @electric-sql/pglite ws');
  }, 30_000);

  it('on a PostgreSQL URL names pg and ws (not PGlite)', async () => {
    const r = await start('postgres://nobody@127.0.0.1:1/none');
    expect(r).toMatchObject({ typed: true, packages: ['pg', 'ws'] });
    expect(r.message).toContain('npm install --save-dev pg ws');
  }, 30_000);

  it('the CLI prints the install command and exits with 1', async () => {
    const child = spawn(
      process.execPath,
      [join(pkg, 'dist', 'devserver', 'cli.js'), '--port', '0', '--db', 'memory'],
      { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(err).toContain('supabase-userdb-dev: the supabase-userdb dev server needs packages');
    expect(err).toContain('npm install --save-dev @electric-sql/pglite ws');
  }, 30_000);

  it(
    'names only what is still missing, and starts once everything is installed',
    async () => {
      provide('ws');
      const r = await start('memory');
      expect(r).toMatchObject({ typed: true, packages: ['@electric-sql/pglite'] });
      expect(r.message).toContain('npm install --save-dev @electric-sql/pglite');
      expect(r.message).toContain('needs a package that is not installed');

      provide('@electric-sql/pglite');
      expect(await start('memory')).toEqual({ started: true });
    },
    BOOT_TIMEOUT_MS,
  );
});
