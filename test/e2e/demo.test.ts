/**
 * The demo PWA in headless Chromium against the dev server on PGlite: two browser contexts signed in
 * as the same user (two devices), offline work with a reload from the service worker, and a
 * conflicting edit on both sides.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, serveApp } from '../../demo/server/serve.js';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { launchBrowser } from './browser.js';
import { buildDemo, DemoPage } from './demo.js';

// The screenshot goes to the untracked artifacts/latest/; `npm run demo:screenshot`
// (USERDB_SAVE_SCREENSHOT=1) replaces the one the README and docs/demo.md show.
const ARTIFACTS = fileURLToPath(
  new URL(
    process.env.USERDB_SAVE_SCREENSHOT === '1' ? './artifacts/' : './artifacts/latest/',
    import.meta.url,
  ),
);
const VIEWPORT = { width: 960, height: 520 };

// In CI a browser that does not launch fails the run; elsewhere the suite says why and is skipped.
const launched = await launchBrowser().catch((e: unknown) => {
  if (process.env.CI) throw e;
  console.warn(`\n[e2e] skipped: ${e instanceof Error ? e.message : String(e)}\n`);
  return undefined;
});

let dist: string;
beforeAll(async () => {
  dist = await buildDemo();
}, 120_000);
afterAll(() => {
  if (dist !== undefined) rmSync(dist, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('serves the build and the dev server, prints the URL, and stops on SIGTERM', async () => {
    const demo = await startDemoCommand(['--dist', dist, '--memory', '--port', '0', '--api-port', '0']);
    const config = (await (await fetch(new URL('config.json', demo.app))).json()) as {
      supabaseUrl: string;
      anonKey: string;
    };
    expect(config.supabaseUrl).toBe(demo.api);
    expect(await (await fetch(demo.app)).text()).toContain('<div id="root">');
    const settings = await fetch(new URL('/auth/v1/settings', demo.api), {
      headers: { apikey: config.anonKey },
    });
    expect(settings.ok).toBe(true);

    expect(await demo.stop()).toBe(0);
    await expect(fetch(demo.app)).rejects.toThrow();
    await expect(fetch(demo.api)).rejects.toThrow();
  }, 90_000);

  it('--dev serves the sources with hot reload, and stops on SIGINT', async () => {
    const demo = await startDemoCommand(['--dev', '--memory', '--port', '0', '--api-port', '0']);
    const config = (await (await fetch(new URL('config.json', demo.app))).json()) as { supabaseUrl: string };
    expect(config.supabaseUrl).toBe(demo.api);
    expect(await (await fetch(demo.app)).text()).toContain('/@vite/client');
    expect(await demo.stop('SIGINT')).toBe(0);
    await expect(fetch(demo.app)).rejects.toThrow();
  }, 90_000);
});

/** Runs `node scripts/demo.mjs …` until it prints its URLs. */
async function startDemoCommand(args: string[]) {
  const child = spawn(process.execPath, ['scripts/demo.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const urls = await new Promise<{ app: string; api: string }>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const app = /userdb demo:\s+(\S+)/.exec(out)?.[1];
      const api = /dev server:\s+(\S+)/.exec(out)?.[1];
      if (app !== undefined && api !== undefined) resolve({ app, api });
    });
    void exited.then((code) => reject(new Error(`npm run demo exited (${code}) early:\n${out}`)));
  });
  return {
    ...urls,
    /** Sends `signal` and resolves with the exit code. */
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

describe.skipIf(launched === undefined)('demo PWA in Chromium', { timeout: 120_000 }, () => {
  const browser = launched?.browser as Browser;
  let api: DevServer;
  let app: AppServer;
  let a: DemoPage;
  let b: DemoPage;
  const contexts: BrowserContext[] = [];

  const newContext = async (): Promise<BrowserContext> => {
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    contexts.push(ctx);
    await DemoPage.recordBadges(ctx);
    return ctx;
  };

  beforeAll(async () => {
    api = await startDevServer({ port: 0, database: 'memory' });
    app = await serveApp({ config: { supabaseUrl: api.url, anonKey: api.anonKey }, dir: dist });
  }, 120_000);

  afterAll(async () => {
    for (const ctx of contexts) await ctx.close().catch(() => undefined);
    await browser?.close();
    await app?.stop();
    await api?.stop();
  });

  it('serves the app shell, the manifest and the service worker', async () => {
    const res = await fetch(new URL('manifest.webmanifest', app.url));
    expect(res.ok).toBe(true);
    const manifest = (await res.json()) as { name: string; display: string; icons: unknown[] };
    expect(manifest.display).toBe('standalone');
    expect(manifest.icons.length).toBeGreaterThan(0);
    const sw = await fetch(new URL('sw.js', app.url));
    expect(await sw.text()).toContain('index.html');
  });

  it('signs in anonymously into an empty workspace', async () => {
    const page = await DemoPage.open(await newContext(), app.url);
    await page.page.getByTestId('anonymous').click();
    await page.page.locator('[data-testid="user"]:text-is("anonymous")').waitFor();
    await page.synced();
    expect(await page.projectTitles()).toEqual([]);
    await page.context.close();
  });

  it('two windows signed in as the same user: an edit in A appears in B', async () => {
    a = await DemoPage.open(await newContext(), app.url);
    await a.signIn('ada@example.com', 'correct horse', 'sign-up');
    await a.synced();
    b = await DemoPage.open(await newContext(), app.url);
    await b.signIn('ada@example.com', 'correct horse', 'sign-in');
    await b.synced();
    // B signed in on a fresh device and has edited nothing: nothing was ever pending there.
    expect((await b.badgeLog()).filter((text) => !text.endsWith('[pending=0]'))).toEqual([]);

    await a.addProject('Launch');
    await a.addTask('Write docs');
    await a.addTask('Ship');
    await b.project('Launch').waitFor();
    await b.selectProject('Launch');
    await b.task('Write docs').waitFor();
    await b.toggleTask('Ship');
    await a.page.locator('[data-testid="task"][data-title="Ship"][data-done="true"]').waitFor();
    await a.renameProject('Launch', 'Launch v1');
    await b.project('Launch v1').waitFor();
    await a.renameTask('Write docs', 'Write the docs');
    await b.task('Write the docs').waitFor();
    await b.task('Write docs').waitFor({ state: 'detached' });
    // A second tab of A follows A's leader tab: it writes to the shared outbox, the leader pushes.
    const tab = await DemoPage.open(a.context, app.url);
    await tab.project('Launch v1').waitFor();
    await tab.addProject('From a second tab');
    await b.project('From a second tab').waitFor();
    await a.project('From a second tab').waitFor();
    await tab.deleteProject('From a second tab');
    await b.project('From a second tab').waitFor({ state: 'detached' });
    await tab.page.close();

    await b.addProject('Scratch');
    await a.project('Scratch').waitFor();
    await a.deleteProject('Scratch');
    await b.project('Scratch').waitFor({ state: 'detached' });
    await a.synced();
    await b.synced();
    expect(await a.projectTitles()).toEqual(['Launch v1']);
    expect(await b.projectTitles()).toEqual(['Launch v1']);
  });

  it('a pull advances lastSyncedAt (the badge\'s "synced at"), not only a push', async () => {
    await b.synced();
    const before = (await b.lastSyncedAt()) ?? 0;
    expect(before).toBeGreaterThan(0);
    await a.addTask('Pulled by B');
    await b.task('Pulled by B').waitFor();
    // B only pulled (it pushed nothing): its last sync is that pull
    await b.page.waitForFunction(
      (t) => Number(document.querySelector('[data-testid="sync-badge"]')?.getAttribute('data-synced-at')) > t,
      before,
    );
    expect(await b.pending()).toBe(0);
  });

  it('the README walk-through: simulate offline, edit, reload (still offline), go back online', async () => {
    await a.serviceWorkerReady();
    await a.setSimulatedOffline(true);
    await a.badge('offline');
    await a.addProject('Planned offline');
    await a.page.reload();
    // The switch is still on after the reload: the page stays offline, with its pending edit.
    await a.project('Planned offline').waitFor();
    expect(await a.simulatedOffline()).toBe(true);
    await a.badge('offline');
    expect(await a.pending()).toBeGreaterThan(0);
    await a.addTask('After the reload');
    expect(await b.projectTitles()).not.toContain('Planned offline');

    await a.setSimulatedOffline(false);
    await b.project('Planned offline').waitFor();
    await b.selectProject('Planned offline');
    await b.task('After the reload').waitFor();
    await a.synced();
    expect(await a.pending()).toBe(0);
  });

  it('"simulate offline" works while the browser is offline already, and after the network returns', async () => {
    await a.context.setOffline(true);
    await a.badge('offline');
    await a.setSimulatedOffline(true); // shows ticked though the page was offline already
    expect(await a.simulatedOffline()).toBe(true);
    await a.addProject('Switch test');
    await a.context.setOffline(false);
    // the network is back, the switch is still on: still offline, the edit still pending
    await a.page.waitForTimeout(500);
    await a.badge('offline');
    expect(await a.pending()).toBeGreaterThan(0);
    await a.setSimulatedOffline(false);
    await a.synced();
    expect(await a.pending()).toBe(0);
    await b.project('Switch test').waitFor();

    // and the other way round: the switch goes off while the browser is offline
    await a.setSimulatedOffline(true);
    await a.context.setOffline(true);
    await a.setSimulatedOffline(false);
    expect(await a.simulatedOffline()).toBe(false);
    await a.badge('offline');
    await a.deleteProject('Switch test');
    await a.context.setOffline(false);
    await a.synced();
    await b.project('Switch test').waitFor({ state: 'detached' });
  });

  it('A works offline, reloads offline with app and data, and B receives the edits once A is back', async () => {
    await a.serviceWorkerReady();
    await a.context.setOffline(true);
    await a.badge('offline');
    await a.addProject('Offline plans');
    await a.addTask('Draft while offline');
    await a.page.reload();
    // The shell comes from the service worker's precache, the data from IndexedDB.
    await a.project('Offline plans').waitFor();
    await a.project('Launch v1').waitFor();
    await a.selectProject('Offline plans');
    await a.task('Draft while offline').waitFor();
    await a.badge('offline');
    expect(await a.pending()).toBeGreaterThan(0);
    expect(await b.projectTitles()).not.toContain('Offline plans');

    // Next day, still offline: the access token has expired and cannot be refreshed. The app still
    // opens the local data at once, keeps taking edits, and syncs once the session is refreshed.
    await a.expireSession();
    await a.page.reload();
    await a.selectProject('Offline plans');
    await a.task('Draft while offline').waitFor();
    await a.badge('offline');
    await a.addTask('Second offline draft');

    await a.context.setOffline(false);
    await b.project('Offline plans').waitFor();
    await b.selectProject('Offline plans');
    await b.task('Draft while offline').waitFor();
    await b.task('Second offline draft').waitFor();
    await a.synced();
  });

  it('a task renamed on both sides converges, and the toast names the task by its title', async () => {
    await a.selectProject('Launch v1');
    await b.selectProject('Launch v1');
    await a.setSimulatedOffline(true);
    await b.setSimulatedOffline(true);
    await a.badge('offline');
    await b.badge('offline');
    await a.renameTask('Ship', 'Ship on Monday');
    await b.renameTask('Ship', 'Ship on Friday');

    await a.setSimulatedOffline(false);
    await a.synced();
    await b.setSimulatedOffline(false);
    await b.synced();
    const toast = b.page.getByTestId('toast').filter({ hasText: 'task' }).first();
    await toast.waitFor();
    expect(await toast.textContent()).toContain(
      'Conflict on title of task “Ship on Friday”: kept your “Ship on Friday” over “Ship on Monday”.',
    );
    expect(await toast.textContent()).not.toMatch(/t_[0-9a-f]{12}/);
    await a.task('Ship on Friday').waitFor();
    await a.task('Ship on Monday').waitFor({ state: 'detached' });
    for (const t of await b.page.getByTestId('toast').getByRole('button').all()) await t.click();
  });

  it('a conflicting edit on both sides converges, with a conflict toast', async () => {
    await a.setSimulatedOffline(true);
    await b.setSimulatedOffline(true);
    await a.badge('offline');
    await b.badge('offline');
    await a.renameProject('Launch v1', 'Launch (from A)');
    await b.renameProject('Launch v1', 'Launch (from B)');

    await a.setSimulatedOffline(false);
    await a.synced();
    await b.setSimulatedOffline(false);
    // B's edit reaches the server last, so it wins on both sides.
    await b.synced();
    const toast = b.page.getByTestId('toast').filter({ hasText: 'project' }).first();
    await toast.waitFor();
    expect(await toast.textContent()).toContain(
      'Conflict on title of project “Launch (from B)”: kept your “Launch (from B)” over “Launch (from A)”.',
    );
    await a.project('Launch (from B)').waitFor();
    await b.project('Launch (from B)').waitFor();
    expect(await a.projectTitles()).toEqual(await b.projectTitles());
    expect(await a.projectTitles()).not.toContain('Launch (from A)');

    await a.selectProject('Launch (from B)');
    await b.selectProject('Launch (from B)');
    await screenshotSideBySide(a, b, `${ARTIFACTS}demo-two-windows.png`);
  });
});

/** One PNG with both windows next to each other. */
async function screenshotSideBySide(left: DemoPage, right: DemoPage, file: string): Promise<void> {
  const [l, r] = await Promise.all([left.page.screenshot(), right.page.screenshot()]);
  const page = await left.context.newPage();
  await page.setViewportSize({ width: VIEWPORT.width * 2 + 48, height: VIEWPORT.height + 64 });
  const img = (png: Buffer, label: string) =>
    `<figure><figcaption>${label}</figcaption><img src="data:image/png;base64,${png.toString('base64')}"></figure>`;
  await page.setContent(
    `<style>body{margin:0;display:flex;gap:16px;padding:8px 16px;background:#444;font:14px system-ui;color:#fff}
     figure{margin:0}figcaption{padding:4px 0}img{display:block;box-shadow:0 2px 8px #0008}</style>
     ${img(l, 'Window A')}${img(r, 'Window B (same user, another device)')}`,
  );
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: file });
  await page.close();
}
