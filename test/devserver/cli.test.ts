import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS } from './helpers.js';

const cli = fileURLToPath(new URL('../../src/devserver/cli.ts', import.meta.url));

it(
  'supabase-userdb-dev prints the URL and keys, serves, and stops cleanly on SIGINT',
  async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', cli, '--port', '0', '--jwt-secret', 'cli-test-secret'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/JWT secret:/.test(out)) resolve();
      });
      child.on('exit', () => reject(new Error(`exited early: ${err}`)));
    });
    const url = /API URL:\s+(\S+)/.exec(out)?.[1];
    const anonKey = /anon key:\s+(\S+)/.exec(out)?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out).toMatch(/service_role key:\s+\S+/);
    expect(out).toContain('JWT secret:       cli-test-secret');
    const health = await fetch(`${url}/auth/v1/health`, { headers: { apikey: anonKey ?? '' } });
    expect(health.status).toBe(200);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  },
  BOOT_TIMEOUT_MS,
);

it(
  'supabase-userdb-dev refuses a bad port',
  async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, '--port', 'many'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(err).toContain('invalid --port');
  },
  BOOT_TIMEOUT_MS,
);
