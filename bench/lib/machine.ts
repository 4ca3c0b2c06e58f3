/**
 * The machine a Node run happens on (stored with every result).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

function packageVersion(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'supabase'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter((line) => line.trim() !== '').length;
    return dirty === 0 ? head : `${head} + ${dirty} uncommitted files in src/ or supabase/`;
  } catch {
    return 'unknown';
  }
}

/** CPU model, cores, memory, OS, Node version, the commit and the versions of the measured deps. */
export function machineInfo(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit: gitCommit(),
    dexie: packageVersion('dexie'),
    'fake-indexeddb': packageVersion('fake-indexeddb'),
    pglite: packageVersion('@electric-sql/pglite'),
  };
}
