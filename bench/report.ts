/**
 * `npx tsx bench/report.ts`: the latest results (bench/results/node.json and browser.json) as
 * Markdown for docs/benchmarks.md and the README: a headline table (key figures, Node and Chromium
 * side by side), then each run's full table with its machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { type Figure, fmtFigureValue, machineLine, markdownTable, type RunResult } from './lib/report.js';
import { fmtRatio } from './lib/stats.js';

function load(name: string): RunResult | undefined {
  const file = new URL(`./results/${name}.json`, import.meta.url);
  if (!existsSync(file)) return undefined;
  // JSON has no NaN: figures that were not measured come back as null.
  return JSON.parse(readFileSync(file, 'utf8'), (_k, v: unknown) =>
    v === null ? Number.NaN : v,
  ) as RunResult;
}

/** The headline figures, by the start of their name. */
const HEADLINE: string[] = [
  'update 1 field, 1k rows → promise resolved',
  'update 1 field, 100k rows → promise resolved',
  'update 1 field, 100k rows → row observer emitted',
  'update 1 field, 100k rows, 50-row list query open',
  'update 1 field, 100k rows, right after a push',
  '10k inserts in one transaction',
  '10k single inserts, per insert',
  'get by key at 100k rows',
  'where + orderBy + limit 50 at 100k rows',
  'start-up 1k rows:',
  'start-up 100k rows:',
  'start-up 10k rows + 1k pending edits',
  'push of a 1-field edit, 10k rows: request bytes',
  '1-field edit, 10k rows → flush() resolved',
  'update 1 field, 10k rows, while syncing',
  '10k edits offline, 10k rows → back online: round trips',
  '10k edits offline, 10k rows → flush() resolved',
  'device A edit → device B live query emitted, 1k rows',
  'device A edit → device B live query emitted, 10k rows',
  'PostgreSQL',
  'core bundle',
];

function cell(f: Figure | undefined): string {
  if (f === undefined) return '';
  const v = fmtFigureValue(f, f.value);
  return f.p99 === undefined ? v : `${v} (p99 ${fmtFigureValue(f, f.p99)})`;
}

function ratio(f: Figure | undefined): string {
  if (f?.ratio === undefined) return '';
  return `${fmtRatio(f.ratio)}${f.ratioOf ? ` ${f.ratioOf}` : ''}`;
}

function target(f: Figure | undefined): string {
  if (f?.target === undefined) return '';
  return `${f.target}${f.met === undefined ? '' : f.met ? ' ✅' : ' ❌ missed'}`;
}

function headline(node: RunResult | undefined, browser: RunResult | undefined): string {
  const lines = [
    '| # | figure | Node, fake-indexeddb: p50 (p99) | ratio | Chromium, IndexedDB: p50 (p99) | ratio | target |',
    '| -: | --- | -: | --- | -: | --- | --- |',
  ];
  for (const prefix of HEADLINE) {
    const fromNode =
      node?.figures.filter((f) => f.name.startsWith(prefix) && !f.name.includes('floor')) ?? [];
    for (const n of fromNode.length > 0 ? fromNode : [undefined]) {
      const b = browser?.figures.find(
        (f) => f.name === (n?.name ?? '') || (n === undefined && f.name.startsWith(prefix)),
      );
      const f = n ?? b;
      if (f === undefined) continue;
      const met = target(n) || target(b);
      lines.push(
        `| ${f.workload} | ${f.name} | ${cell(n)} | ${ratio(n)} | ${cell(b)} | ${ratio(b)} | ${met} |`,
      );
    }
  }
  return lines.join('\n');
}

const node = load('node');
const browser = load('browser');
const parts: string[] = ['### Headline', '', headline(node, browser), ''];
for (const run of [node, browser]) {
  if (run === undefined) continue;
  const title =
    run.name === 'node'
      ? '`npm run bench` (Node, fake-indexeddb; dev server on PGlite)'
      : '`npm run bench:browser` (headless Chromium, real IndexedDB)';
  parts.push(
    `### ${title}`,
    '',
    `Run ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${(run.durationMs / 1000).toFixed(0)} s. ${machineLine(run.machine)}`,
    '',
    markdownTable(run.figures),
    '',
  );
}
process.stdout.write(parts.join('\n'));
