/**
 * Leadership with real Web Locks in headless Chromium: two tabs of one user (one browser context)
 * elect exactly one leader; closing the leader in the middle of a flush hands leadership to the other
 * tab, which pushes every pending edit of both.
 */
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { eventually, newUser, serverDoc } from '../sync/helpers/devices.js';
import { launchBrowser } from './browser.js';
import { bundleLibrary, OPEN_DB, serveLibrary } from './library.js';

// In CI a browser that does not launch fails the run; elsewhere the suite says why and is skipped.
const launched = await launchBrowser().catch((e: unknown) => {
  if (process.env.CI) throw e;
  console.warn(`\n[e2e] skipped: ${e instanceof Error ? e.message : String(e)}\n`);
  return undefined;
});

let server: DevServer;
let site: { url: string; server: Server };

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  site = await serveLibrary(await bundleLibrary());
}, 120_000);
afterAll(async () => {
  await launched?.browser.close();
  site?.server.close();
  await server?.stop();
});

interface PageStatus {
  state: string;
  leader: boolean;
  pendingCount: number;
}

function status(page: Page): Promise<PageStatus> {
  return page.evaluate('window.statuses[window.statuses.length - 1]') as Promise<PageStatus>;
}

async function openTab(browser: Browser | undefined, page: Page | undefined, email: string): Promise<Page> {
  const tab = page ?? (await (browser as Browser).newPage());
  await tab.goto(site.url);
  await tab.evaluate(OPEN_DB);
  await tab.evaluate(
    `window.openDb(${JSON.stringify(server.url)}, ${JSON.stringify(server.anonKey)}, ${JSON.stringify(email)}, 'password-123')`,
  );
  return tab;
}

describe.skipIf(launched === undefined)('leadership with Web Locks (Chromium)', () => {
  it('two tabs, one leader; the leader closes mid-flush; the other leads and pushes every edit of both', async () => {
    const user = await newUser(server);
    if (launched === undefined) throw new Error('no browser');
    const context = await launched.browser.newContext();
    try {
      const a = await openTab(undefined, await context.newPage(), user.email);
      const b = await openTab(undefined, await context.newPage(), user.email);
      await eventually(
        async () => (await status(a)).leader !== (await status(b)).leader,
        20_000,
        'exactly one leader',
      );
      const [leader, follower] = (await status(a)).leader ? [a, b] : [b, a];
      await eventually(async () => (await status(leader)).state === 'idle', 20_000, 'first sync');

      server.faults.latency(400); // every request takes long: the flush is in flight when the leader dies
      for (let i = 0; i < 5; i++) {
        await leader.evaluate(`window.db.table('projects').insert({ id: 'l_${i}', title: 'leader ${i}' })`);
        await follower.evaluate(
          `window.db.table('projects').insert({ id: 'f_${i}', title: 'follower ${i}' })`,
        );
      }
      void leader.evaluate('window.db.flush().catch(() => undefined)').catch(() => undefined); // the page dies
      await eventually(async () => (await status(leader)).state === 'pushing', 20_000, 'leader pushing');
      await leader.close(); // the tab goes away with its request in flight; its Web Lock is released
      await eventually(async () => (await status(follower)).leader, 20_000, 'the other tab leads');
      server.faults.latency(0);
      await follower.evaluate('window.db.flush()');
      expect(await status(follower)).toMatchObject({ leader: true, pendingCount: 0 });

      const doc = (await serverDoc(user.sb)) as { tables: { projects: { rows: string[][] } } };
      const ids = doc.tables.projects.rows.map((r) => r[0]).sort();
      expect(ids).toEqual(['f_0', 'f_1', 'f_2', 'f_3', 'f_4', 'l_0', 'l_1', 'l_2', 'l_3', 'l_4']);
      // the tab that took over shows them all too
      const local = (await follower.evaluate(
        "window.db.table('projects').query().toArray().then((rows) => rows.map((r) => r.id).sort())",
      )) as string[];
      expect(local).toEqual(ids);
    } finally {
      server.faults.latency(0);
      await context.close();
    }
  }, 120_000);
});
