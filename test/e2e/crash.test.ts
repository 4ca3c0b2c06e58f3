/**
 * Abrupt death in headless Chromium: the browser process is killed (SIGKILL) during a burst of
 * writes while sync runs; the same profile (`--user-data-dir`) is opened again. Every write whose
 * promise resolved is there and syncs; nothing is applied twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { eventually, newUser, serverDoc } from '../sync/helpers/devices.js';
import { chooseBrowser, launchBrowser } from './browser.js';
import { bundleLibrary, OPEN_DB, serveLibrary } from './library.js';

// In CI a browser that does not launch fails the run; elsewhere the suite says why and is skipped.
const launched = await launchBrowser().catch((e: unknown) => {
  if (process.env.CI) throw e;
  console.warn(`\n[e2e] skipped: ${e instanceof Error ? e.message : String(e)}\n`);
  return undefined;
});
await launched?.browser.close();

let server: DevServer;
let site: { url: string; server: Server };
const profile = mkdtempSync(join(tmpdir(), 'userdb-crash-'));

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  site = await serveLibrary(await bundleLibrary());
}, 120_000);
afterAll(async () => {
  site?.server.close();
  await server?.stop();
  rmSync(profile, { recursive: true, force: true });
});

/** Chromium as its own process on `profile`, driven over CDP, so that it can be killed for real. */
async function startChromium(): Promise<{ proc: ChildProcess; browser: Browser }> {
  const choice = await chooseBrowser();
  const proc = spawn(
    choice.executablePath,
    [...choice.args, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const ws = await new Promise<string>((resolve, reject) => {
    let text = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${text.slice(-500)}`)));
  });
  const browser = await chromium.connectOverCDP(ws);
  return { proc, browser };
}

async function openPage(browser: Browser, email: string): Promise<Page> {
  const context = browser.contexts()[0] ?? (await browser.newContext());
  const page = await context.newPage();
  await page.goto(site.url);
  await page.evaluate(OPEN_DB);
  await page.evaluate(
    `window.openDb(${JSON.stringify(server.url)}, ${JSON.stringify(server.anonKey)}, ${JSON.stringify(email)}, 'password-123')`,
  );
  return page;
}

describe.skipIf(launched === undefined)('abrupt death (Chromium killed)', () => {
  it('every write whose promise resolved survives the kill, syncs after reopening, and is applied once', async () => {
    const user = await newUser(server);
    const first = await startChromium();
    const resolved: string[] = [];
    try {
      const page = await openPage(first.browser, user.email);
      // killed the moment the 150th write's promise has resolved: a write that resolves before its
      // IndexedDB transaction commits is lost with certainty, not by timing luck
      const exited = new Promise((resolve) => first.proc.once('exit', resolve));
      await page.exposeFunction('written', (id: string) => {
        resolved.push(id);
        if (resolved.length === 150) first.proc.kill('SIGKILL');
      });
      server.faults.latency(30); // pushes overlap the burst
      // a burst of writes: each resolved one is reported to the test before the next starts
      void page
        .evaluate(`(async () => {
          for (let i = 0; i < 100000; i++) {
            const id = 'w_' + String(i).padStart(6, '0');
            await window.db.table('projects').insert({ id, title: 'write ' + i });
            await window.written(id);
          }
        })()`)
        .catch(() => undefined); // the browser dies under it
      await eventually(() => resolved.length >= 150, 60_000, 'a burst of writes');
      await exited;
    } finally {
      if (first.proc.exitCode === null && first.proc.signalCode === null) {
        first.proc.kill('SIGKILL');
        await new Promise((resolve) => first.proc.once('exit', resolve));
      }
      server.faults.latency(0);
    }
    const heard = [...resolved];
    expect(heard.length).toBeGreaterThanOrEqual(150);

    const second = await startChromium();
    try {
      const page = await openPage(second.browser, user.email);
      await page.evaluate('window.db.flush()');
      const local = (await page.evaluate(
        "window.db.table('projects').query().toArray().then((rows) => rows.map((r) => r.id))",
      )) as string[];
      for (const id of heard) expect(local).toContain(id);
      const doc = (await serverDoc(user.sb)) as { tables: { projects: { rows: string[][] } } };
      const ids = doc.tables.projects.rows.map((r) => r[0]);
      expect(new Set(ids).size).toBe(ids.length); // no row twice
      expect([...ids].sort()).toEqual([...local].sort()); // the server has exactly what the device has
      for (const id of heard) expect(ids).toContain(id);
      // written in order: what survived is a prefix of the burst (no hole, nothing from nowhere)
      const sorted = [...ids].sort();
      expect(sorted).toEqual(sorted.map((_, i) => `w_${String(i).padStart(6, '0')}`));
    } finally {
      await second.browser.close();
      second.proc.kill('SIGKILL');
    }
  }, 180_000);
});
