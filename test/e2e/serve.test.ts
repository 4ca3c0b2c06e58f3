/**
 * The demo's app server (no browser): static files, the SPA fallback, `/config.json`, caching
 * headers, and paths outside the build.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, persistentSecret, serveApp } from '../../demo/server/serve.js';

let dir: string;
let app: AppServer;
const config = { supabaseUrl: 'http://127.0.0.1:54321', anonKey: 'anon.jwt.value' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'userdb-serve-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="root"></div>');
  writeFileSync(join(dir, 'sw.js'), 'self.addEventListener("fetch", () => {});');
  writeFileSync(join(dir, 'manifest.webmanifest'), '{"name":"x"}');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(tmpdir(), 'userdb-serve-secret.txt'), 'do not serve');
  app = await serveApp({ config, dir });
});

afterAll(async () => {
  await app.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(tmpdir(), 'userdb-serve-secret.txt'), { force: true });
});

/** A raw GET, so `..` in the path reaches the server as sent. */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const url = new URL(app.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveApp', () => {
  it('answers /config.json with the backend, never cached', async () => {
    const res = await fetch(new URL('config.json', app.url));
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(config);
  });

  it('serves hashed assets as immutable and the shell and service worker as revalidated', async () => {
    const asset = await fetch(new URL('assets/index-abc123.js', app.url));
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const sw = await fetch(new URL('sw.js', app.url));
    expect(sw.headers.get('cache-control')).toBe('no-cache');
    const manifest = await fetch(new URL('manifest.webmanifest', app.url));
    expect(manifest.headers.get('content-type')).toBe('application/manifest+json');
  });

  it('falls back to index.html for app routes, but not for missing files', async () => {
    const route = await fetch(new URL('projects/p_1', app.url));
    expect(route.status).toBe(200);
    expect(await route.text()).toContain('id="root"');
    const missing = await fetch(new URL('assets/missing.js', app.url));
    expect(missing.status).toBe(404);
  });

  it('never serves files outside the build', async () => {
    const res = await rawGet('/../userdb-serve-secret.txt');
    expect(res.body).not.toContain('do not serve');
    const encoded = await rawGet('/%2e%2e/userdb-serve-secret.txt');
    expect(encoded.body).not.toContain('do not serve');
    expect([403, 404]).toContain(encoded.status);
  });

  it('refuses writes', async () => {
    const res = await fetch(app.url, { method: 'POST', body: 'x' });
    expect(res.status).toBe(405);
  });

  it('refuses to start without a build', async () => {
    await expect(serveApp({ config, dir: join(dir, 'assets') })).rejects.toThrow(/build the demo first/);
  });
});

describe('persistentSecret', () => {
  it('creates a secret once and returns the same one afterwards', () => {
    const data = mkdtempSync(join(tmpdir(), 'userdb-secret-'));
    const first = persistentSecret(data);
    expect(first.length).toBeGreaterThanOrEqual(32);
    expect(persistentSecret(data)).toBe(first);
    rmSync(data, { recursive: true, force: true });
  });
});
