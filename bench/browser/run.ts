/**
 * `npm run bench:browser`: workloads 1–4 in headless Chromium on its real IndexedDB (on disk, in a
 * fresh profile). Bundles bench/browser/entry.ts with esbuild, serves it on 127.0.0.1, runs it with
 * playwright-core, prints one Markdown table and writes bench/results/latest/browser.json (untracked),
 * or with `--save` the tracked bench/results/browser.json.
 *
 * Browser: CHROMIUM_PATH, else /usr/bin/chromium, else the binary of @sparticuz/chromium.
 * Options: `--quick` (small sizes, few repeats), `--only=4` or `--only=1,3` (some of workloads
 * 1–4), `--out=name`, `--save`.
 *
 * Each workload runs in a fresh page of the same browser. Heap figures (workload 4) come from the page's V8 isolate through the DevTools protocol: a full
 * garbage collection (`HeapProfiler.collectGarbage`), then `Runtime.getHeapUsage`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { machineInfo } from '../lib/machine.js';
import { type Figure, formatRun, type RunResult } from '../lib/report.js';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const save = args.includes('--save');
const only = [
  ...new Set(
    (args.find((a) => a.startsWith('--only='))?.slice('--only='.length) ?? '1,2,3,4').split(',').map(Number),
  ),
].sort((a, b) => a - b);
if (only.length === 0 || only.some((w) => ![1, 2, 3, 4].includes(w))) {
  process.stderr.write('--only takes workload numbers among 1,2,3,4 (e.g. --only=4)\n');
  process.exit(2);
}
const out =
  args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? (quick ? 'browser-quick' : 'browser');
const log = (line: string) =>
  process.stderr.write(`[bench:browser ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function chooseBrowser(): Promise<{ source: string; executablePath: string; args: string[] }> {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv !== undefined && fromEnv !== '')
    return { source: 'CHROMIUM_PATH', executablePath: fromEnv, args: FLAGS };
  if (existsSync('/usr/bin/chromium')) {
    return { source: '/usr/bin/chromium', executablePath: '/usr/bin/chromium', args: FLAGS };
  }
  const { default: sparticuz } = await import('@sparticuz/chromium');
  const executablePath = await sparticuz.executablePath();
  const extra = sparticuz.args.filter(
    (a) => !a.startsWith('--headless') && a !== '--single-process' && a !== '--no-zygote',
  );
  return { source: '@sparticuz/chromium', executablePath, args: [...new Set([...extra, ...FLAGS])] };
}

const started = Date.now();
log('bundling bench/browser/entry.ts');
const bundle = await build({
  entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  write: false,
  logLevel: 'silent',
});
const js = bundle.outputFiles[0]?.text ?? '';
const html =
  '<!doctype html><meta charset="utf-8"><title>userdb bench</title><script type="module" src="/bench.js"></script>';
// Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
const isolation = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};
const http = createServer((req, res) => {
  if (req.url === '/bench.js') {
    res.writeHead(200, { 'content-type': 'text/javascript', ...isolation }).end(js);
  } else {
    res.writeHead(200, { 'content-type': 'text/html', ...isolation }).end(html);
  }
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const port = (http.address() as AddressInfo).port;

const choice = await chooseBrowser();
log(`launching Chromium from ${choice.source}`);
const browser = await chromium.launch({
  executablePath: choice.executablePath,
  args: choice.args,
  headless: true,
  timeout: 60_000,
});
let figures: Figure[];
let userAgent = '';
try {
  figures = [];
  // each workload in a fresh page (a fresh heap): start-up is measured as an app starts, not in a
  // heap that holds what earlier workloads left for the garbage collector; 3 reads 1's database
  const groups = [
    only.filter((w) => w === 1 || w === 3),
    ...only.filter((w) => w === 2 || w === 4).map((w) => [w]),
  ];
  for (const group of groups.filter((g) => g.length > 0)) {
    const page = await browser.newPage();
    page.setDefaultTimeout(0);
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.exposeFunction('benchLog', (line: string) => log(line));
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('HeapProfiler.enable');
    await page.exposeFunction('benchHeap', async () => {
      for (let i = 0; i < 3; i++) await cdp.send('HeapProfiler.collectGarbage');
      return (await cdp.send('Runtime.getHeapUsage')).usedSize;
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => typeof window.userdbBench === 'function');
    userAgent = await page.evaluate(() => navigator.userAgent);
    if (!(await page.evaluate(() => self.crossOriginIsolated)))
      log('warning: not cross-origin isolated (100 µs timer)');
    figures.push(...(await page.evaluate(([q, w]) => window.userdbBench(q, w), [quick, group] as const)));
    await page.close();
  }
} finally {
  await browser.close();
  http.close();
}

const run: RunResult = {
  name: 'browser',
  startedAt: new Date(started).toISOString(),
  durationMs: Date.now() - started,
  machine: {
    ...machineInfo(),
    browser: `Chromium ${browser.version()} (${choice.source}), headless`,
    indexedDB: 'real IndexedDB (Chromium, on disk, fresh profile)',
    userAgent,
  },
  config: { quick, workloads: only.join(','), seed: 'fixed (mulberry32; rows seed 1, edits seed 4242+rows)' },
  // JSON has no NaN: the page returned nulls for figures it could not measure.
  figures: figures.map((f) => ({ ...f, value: f.value ?? Number.NaN })),
};
delete run.machine['fake-indexeddb'];
delete run.machine.pglite;
// Runs go to the untracked results/latest/; --save writes the tracked results/ that the docs quote.
const dir = fileURLToPath(new URL(save ? '../results/' : '../results/latest/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}${out}.json`, `${JSON.stringify(run, null, 2)}\n`);
process.stdout.write(formatRun(run));
log(
  `done in ${((Date.now() - started) / 1000).toFixed(0)} s; wrote bench/results/${save ? '' : 'latest/'}${out}.json`,
);
