/**
 * Helpers of the end-to-end tests: build the demo once, run it, and drive its pages.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';

const run = promisify(execFile);

/** Builds the demo into a fresh temporary directory (production mode, in its own process). */
export async function buildDemo(): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), 'userdb-demo-'));
  await run(
    process.execPath,
    [
      'node_modules/vite/bin/vite.js',
      'build',
      '--config',
      'demo/vite.config.ts',
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { env: { ...process.env, NODE_ENV: 'production' }, maxBuffer: 16 * 1024 * 1024 },
  );
  return outDir;
}

/** Default wait for something to show up in a page (sync through Realtime included). */
export const UI_TIMEOUT = 20_000;

/** One browser window of the demo. */
export class DemoPage {
  constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  /**
   * Records every text the sync badge shows in each page of `context`, from the first render on
   * (read with {@link DemoPage.badgeLog}).
   */
  static async recordBadges(context: BrowserContext): Promise<void> {
    await context.addInitScript(() => {
      const log: string[] = [];
      (window as unknown as { badgeLog: string[] }).badgeLog = log;
      new MutationObserver(() => {
        const badge = document.querySelector('[data-testid="sync-badge"]');
        if (badge === null) return;
        const text = `${badge.textContent ?? ''} [pending=${badge.getAttribute('data-pending')}]`;
        if (text !== log.at(-1)) log.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
    });
  }

  static async open(context: BrowserContext, url: string): Promise<DemoPage> {
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    await page.goto(url);
    return new DemoPage(context, page);
  }

  /** Creates an account, or signs in to an existing one. */
  async signIn(email: string, password: string, mode: 'sign-up' | 'sign-in'): Promise<void> {
    const { page } = this;
    if (mode === 'sign-up') await page.getByTestId('toggle-mode').click();
    await page.getByTestId('email').fill(email);
    await page.getByTestId('password').fill(password);
    await page.getByTestId('submit').click();
    await page.getByTestId('user').waitFor();
  }

  /** Waits until the service worker controls the page (the app shell is precached). */
  async serviceWorkerReady(): Promise<void> {
    await this.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (navigator.serviceWorker.controller !== null) return;
      await new Promise<void>((resolve) =>
        navigator.serviceWorker.addEventListener('controllerchange', () => resolve(), { once: true }),
      );
    });
  }

  /** Makes supabase-js believe the stored access token expired a minute ago. */
  async expireSession(): Promise<void> {
    const changed = await this.page.evaluate(() => {
      let n = 0;
      for (const key of Object.keys(localStorage)) {
        if (!/^sb-.+-auth-token$/.test(key)) continue;
        const session = JSON.parse(localStorage.getItem(key) ?? '{}') as { expires_at?: number };
        session.expires_at = Math.floor(Date.now() / 1000) - 60;
        localStorage.setItem(key, JSON.stringify(session));
        n++;
      }
      return n;
    });
    if (changed !== 1) throw new Error(`expected one stored supabase session, found ${changed}`);
  }

  /** Every badge text this page showed since it loaded (needs {@link DemoPage.recordBadges}). */
  badgeLog(): Promise<string[]> {
    return this.page.evaluate(() => [...(window as unknown as { badgeLog: string[] }).badgeLog]);
  }

  /** The badge's `lastSyncedAt` (epoch ms), or null before the first sync. */
  async lastSyncedAt(): Promise<number | null> {
    const v = await this.page.getByTestId('sync-badge').getAttribute('data-synced-at');
    return v === null || v === '' ? null : Number(v);
  }

  /** The number of writes the badge counts as pending. */
  async pending(): Promise<number> {
    return Number(await this.page.getByTestId('sync-badge').getAttribute('data-pending'));
  }

  project(title: string) {
    return this.page.locator(`[data-testid="project"][data-title="${title}"]`);
  }

  async addProject(title: string): Promise<void> {
    await this.page.getByTestId('new-project').fill(title);
    await this.page.getByTestId('add-project').click();
    await this.project(title).waitFor();
  }

  async renameProject(from: string, to: string): Promise<void> {
    await this.project(from).getByTestId('rename').click();
    await this.page.getByTestId('rename-input').fill(to);
    await this.page.getByTestId('rename-save').click();
    await this.project(to).waitFor();
  }

  async deleteProject(title: string): Promise<void> {
    await this.project(title).getByTestId('delete').click();
    await this.project(title).waitFor({ state: 'detached' });
  }

  async selectProject(title: string): Promise<void> {
    await this.project(title).getByTestId('project-title').click();
    await this.page.locator(`[data-testid="tasks-heading"]:text-is("${title}")`).waitFor();
  }

  task(title: string) {
    return this.page.locator(`[data-testid="task"][data-title="${title}"]`);
  }

  async addTask(title: string): Promise<void> {
    await this.page.getByTestId('new-task').fill(title);
    await this.page.getByTestId('add-task').click();
    await this.task(title).waitFor();
  }

  async renameTask(from: string, to: string): Promise<void> {
    await this.task(from).getByTestId('rename').click();
    await this.page.getByTestId('rename-input').fill(to);
    await this.page.getByTestId('rename-save').click();
    await this.task(to).waitFor();
  }

  async toggleTask(title: string): Promise<void> {
    const before = await this.task(title).getAttribute('data-done');
    await this.task(title).getByTestId('task-done').click();
    await this.page
      .locator(
        `[data-testid="task"][data-title="${title}"][data-done="${before === 'true' ? 'false' : 'true'}"]`,
      )
      .waitFor();
  }

  /** The project titles shown, in order. */
  projectTitles(): Promise<string[]> {
    return this.page
      .getByTestId('project')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-title') ?? ''));
  }

  /** Waits until the badge shows `kind` (synced, offline, pending, syncing, error). */
  async badge(kind: string): Promise<void> {
    await this.page.locator(`[data-testid="sync-badge"][data-kind="${kind}"]`).waitFor();
  }

  /** Waits until nothing is pending and the last sync succeeded. */
  async synced(): Promise<void> {
    await this.badge('synced');
  }

  /** Sets the "simulate offline" switch by clicking it, and checks that it shows the new state. */
  async setSimulatedOffline(offline: boolean): Promise<void> {
    const box = this.page.getByTestId('simulate-offline');
    if ((await box.isChecked()) !== offline) await box.click();
    await this.page
      .locator(`[data-testid="simulate-offline"]${offline ? ':checked' : ':not(:checked)'}`)
      .waitFor();
  }

  /** Whether the "simulate offline" switch shows as ticked. */
  simulatedOffline(): Promise<boolean> {
    return this.page.getByTestId('simulate-offline').isChecked();
  }
}
