/**
 * `npx tsx bench/report.ts`: the latest results (bench/results/node.json and browser.json) as one
 * Markdown section — machine, then one table per run — for docs/benchmarks.md and the README.
 */
import { existsSync, readFileSync } from 'node:fs';
import { machineLine, markdownTable, type RunResult } from './lib/report.js';

const parts: string[] = [];
for (const name of ['node', 'browser']) {
  const file = new URL(`./results/${name}.json`, import.meta.url);
  if (!existsSync(file)) continue;
  const run = JSON.parse(readFileSync(file, 'utf8'), (_k, v: unknown) =>
    v === null ? Number.NaN : v,
  ) as RunResult;
  const title =
    name === 'node'
      ? '`npm run bench` (Node, fake-indexeddb)'
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
