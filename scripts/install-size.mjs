#!/usr/bin/env node
// What `npm install supabase-userdb` adds to a fresh Vite app (docs/install.md): packs this
// checkout (or takes tarballs), scaffolds a React + TypeScript app with create-vite in a temporary
// directory, and installs each tarball into a copy of it, twice: into the bare app, and into an app
// that already uses @supabase/supabase-js and zod (as a Supabase app does). Prints a Markdown table
// of the packages and bytes each install adds to node_modules. Needs the npm registry.
//
//   node scripts/install-size.mjs                       # this checkout (builds dist/ first)
//   node scripts/install-size.mjs before=a.tgz after=b.tgz
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const npm = (args, cwd) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

const work = mkdtempSync(join(tmpdir(), 'userdb-install-size-'));
try {
  let tarballs = process.argv.slice(2).map((arg) => {
    const [label, file] = arg.includes('=') ? arg.split('=') : [arg, arg];
    return { label, file: resolve(file) };
  });
  if (tarballs.length === 0) {
    execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
    const name = npm(['pack', '--pack-destination', work]).trim().split('\n').at(-1);
    tarballs = [{ label: 'this checkout', file: join(work, name) }];
  }

  const base = join(work, 'vite-app');
  execFileSync(
    'npm',
    ['create', '--yes', 'vite@latest', 'vite-app', '--', '--template', 'react-ts', '--no-interactive'],
    {
      cwd: work,
      stdio: 'ignore',
    },
  );
  npm(['install'], base);
  const supabaseApp = join(work, 'supabase-app');
  cpSync(base, supabaseApp, { recursive: true });
  npm(['install', '@supabase/supabase-js', 'zod'], supabaseApp);

  const rows = [];
  for (const { label, file } of tarballs) {
    for (const [appLabel, app] of [
      ['fresh Vite app (React + TS)', base],
      ['Vite app with @supabase/supabase-js and zod', supabaseApp],
    ]) {
      const dir = join(work, 'try');
      rmSync(dir, { recursive: true, force: true });
      cpSync(app, dir, { recursive: true });
      const before = measure(dir);
      npm(['install', file], dir);
      const after = measure(dir);
      const added = after.names.filter((n) => !before.names.includes(n));
      rows.push({
        label,
        appLabel,
        packages: added.length,
        bytes: after.bytes - before.bytes,
        added: added.filter((n) => !n.startsWith('@types/')).sort(),
      });
    }
  }
  process.stdout.write('| package | into | packages added | size added | added |\n|---|---|---:|---:|---|\n');
  for (const r of rows) {
    process.stdout.write(
      `| ${r.label} | ${r.appLabel} | ${r.packages} | ${(r.bytes / 1e6).toFixed(1)} MB | ${r.added.join(', ')} |\n`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The installed packages (by name@version) and the bytes of node_modules. */
function measure(dir) {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
  const names = Object.entries(lock.packages)
    .filter(([path]) => path.startsWith('node_modules/'))
    .map(([path, p]) => `${path.slice(path.lastIndexOf('node_modules/') + 13)}@${p.version}`);
  return { names: [...new Set(names)], bytes: du(join(dir, 'node_modules')) };
}

function du(path) {
  const s = statSync(path, { throwIfNoEntry: false });
  if (s === undefined) return 0;
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const entry of readdirSync(path)) total += du(join(path, entry));
  return total;
}
