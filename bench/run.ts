/**
 * `npm run bench`: every workload in Node (fake-indexeddb for the local ones, the dev server on
 * PGlite for sync, PGlite and — with DATABASE_URL — PostgreSQL for the server and Realtime load ones,
 * esbuild for the bundle). Prints one Markdown table and writes bench/results/latest/node.json
 * (untracked), or with `--save` the tracked bench/results/node.json.
 *
 * Options: `--quick` (small sizes, few repeats: a smoke run), `--only=1,2,7` (some workloads),
 * `--w9=delta` (workload 9 by delta only), `--out=name` (results file name, default `node`, or `node-quick` with --quick), `--save` (write the
 * tracked file).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { localConfig } from './lib/config.js';
import { machineInfo } from './lib/machine.js';
import { fakeIndexedDb } from './lib/node-backend.js';
import { type Figure, formatRun, type RunResult } from './lib/report.js';
import { bundleWorkload } from './workloads/bundle.js';
import { localWorkloads, warmUp } from './workloads/local.js';
import { realtimeLoadWorkload } from './workloads/realtime-load.js';
import { serverWorkload } from './workloads/server.js';
import { syncWorkloads } from './workloads/sync.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
// workload 9's modes: `--w9=delta` measures only delta sync (whole documents at 100k rows take long)
const modes = (args.find((a) => a.startsWith('--w9='))?.slice('--w9='.length) ?? 'whole,delta')
  .split(',')
  .filter((m): m is 'delta' | 'whole' => m === 'delta' || m === 'whole');
const save = args.includes('--save');
const only = new Set(
  (args.find((a) => a.startsWith('--only='))?.slice('--only='.length) ?? '1,2,3,4,5,6,7,8,9,10')
    .split(',')
    .map(Number),
);
const out =
  args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? (quick ? 'node-quick' : 'node');
const log = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const machine = machineInfo();
const local = localConfig(quick, log);

const started = Date.now();
const figures: Figure[] = [];
const backend = fakeIndexedDb(String(machine['fake-indexeddb']));
if ([1, 2, 3, 4].some((w) => only.has(w))) {
  await warmUp(backend);
  const all = await localWorkloads(backend, local, only);
  figures.push(...all.filter((f) => only.has(f.workload)));
}
if (only.has(5) || only.has(6) || only.has(9)) {
  const sync = await syncWorkloads({ quick, log, modes }, only);
  figures.push(...sync.filter((f) => only.has(f.workload)));
}
if (only.has(7))
  figures.push(...(await serverWorkload({ quick, log, databaseUrl: process.env.DATABASE_URL })));
if (only.has(8)) figures.push(...(await bundleWorkload()));
if (only.has(10))
  figures.push(...(await realtimeLoadWorkload({ quick, log, databaseUrl: process.env.DATABASE_URL })));

const run: RunResult = {
  name: 'node',
  startedAt: new Date(started).toISOString(),
  durationMs: Date.now() - started,
  machine: { ...machine, indexedDB: backend.label },
  config: {
    quick,
    workloads: [...only].join(','),
    sizes: local.sizes.join(','),
    bulkRows: local.bulkRows,
    seed: 'fixed (mulberry32; rows seed 1, edits seed 4242+rows)',
    postgres: process.env.DATABASE_URL === undefined ? 'not set' : 'DATABASE_URL',
  },
  figures,
};
// Runs go to the untracked results/latest/; --save writes the tracked results/ that the docs quote.
const dir = fileURLToPath(new URL(save ? './results/' : './results/latest/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}${out}.json`, `${JSON.stringify(run, null, 2)}\n`);
process.stdout.write(formatRun(run));
log(
  `done in ${((Date.now() - started) / 1000).toFixed(0)} s; wrote bench/results/${save ? '' : 'latest/'}${out}.json`,
);
process.exit(0);
