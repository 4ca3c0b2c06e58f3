/**
 * Workload 8: the size of the `userdb` core entry (src/index.ts) as a browser ESM bundle, minified
 * by esbuild and gzipped (level 9): without its dependencies (dexie, rxjs, zod marked external, as
 * an app that already has them sees it) and with them bundled in.
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Figure } from '../lib/report.js';

async function size(external: boolean): Promise<{ min: number; gz: number }> {
  const result = await build({
    entryPoints: [new URL('../../src/index.ts', import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    treeShaking: true,
    packages: external ? 'external' : 'bundle',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  return { min: file.contents.byteLength, gz: gzipSync(file.contents, { level: 9 }).byteLength };
}

/** The two bundle sizes (minified and gzipped bytes). */
export async function bundleWorkload(): Promise<Figure[]> {
  const own = await size(true);
  const all = await size(false);
  return [
    {
      workload: 8,
      name: 'core bundle, dependencies external: min+gzip',
      unit: 'bytes',
      value: own.gz,
      note: `minified ${(own.min / 1024).toFixed(1)} KiB; esbuild ESM, browser, es2022`,
    },
    {
      workload: 8,
      name: 'core bundle with dexie, rxjs, zod: min+gzip',
      unit: 'bytes',
      value: all.gz,
      ratio: all.gz / own.gz,
      ratioOf: 'vs core alone',
      note: `minified ${(all.min / 1024).toFixed(1)} KiB`,
    },
  ];
}
