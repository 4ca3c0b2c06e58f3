/**
 * Headless Chromium for the end-to-end tests: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`,
 * else the binary the npm package `@sparticuz/chromium` ships (so `npm install` alone is enough).
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Flags for a sandboxed machine with no outside network (no background traffic, no GPU). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const LAMBDA_ONLY = new Set(['--single-process', '--no-zygote']);

/** Where the browser came from and how to start it. */
export interface BrowserChoice {
  source: 'CHROMIUM_PATH' | '/usr/bin/chromium' | '@sparticuz/chromium';
  executablePath: string;
  args: string[];
}

/** Picks the browser (see the module documentation). */
export async function chooseBrowser(): Promise<BrowserChoice> {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv !== undefined && fromEnv !== '') {
    return { source: 'CHROMIUM_PATH', executablePath: fromEnv, args: CHROMIUM_FLAGS };
  }
  if (process.env.USERDB_E2E_BROWSER !== 'bundled' && existsSync('/usr/bin/chromium')) {
    return { source: '/usr/bin/chromium', executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS };
  }
  const { default: sparticuz } = await import('@sparticuz/chromium');
  const executablePath = await sparticuz.executablePath();
  const args = [...new Set([...sparticuz.args, ...CHROMIUM_FLAGS])].filter(
    (a) =>
      // One headless flag (ours): its `--headless='shell'` variant would conflict. Its Lambda-only
      // `--single-process` crashes the browser as soon as a second context opens.
      (!a.startsWith('--headless') || a === '--headless') && !LAMBDA_ONLY.has(a),
  );
  return { source: '@sparticuz/chromium', executablePath, args };
}

/** Launches the chosen browser; rejects with a message naming where it came from. */
export async function launchBrowser(): Promise<{ browser: Browser; choice: BrowserChoice }> {
  const choice = await chooseBrowser();
  try {
    const browser = await chromium.launch({
      executablePath: choice.executablePath,
      args: choice.args,
      headless: true,
      timeout: 60_000,
    });
    return { browser, choice };
  } catch (e) {
    throw new Error(
      `Chromium from ${choice.source} (${choice.executablePath}) did not launch: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}
