/**
 * Workload 8: the size of the `supabase-userdb` core entry (src/index.ts) as a browser ESM bundle, minified
 * by esbuild and gzipped (level 9): without its dependencies (every package external, as an app
 * that already has them sees it) and with them bundled in (the note lists which ones).
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Figure } from '../lib/report.js';

async function size(external: boolean): Promise<{ min: number; gz: number; packages: string[] }> {
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
    metafile: true,
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  // Minified bytes each package (and userdb itself) contributes.
  const bytes = new Map<string, number>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? 'userdb';
      bytes.set(name, (bytes.get(name) ?? 0) + bytesInOutput);
    }
  }
  return {
    min: file.contents.byteLength,
    gz: gzipSync(file.contents, { level: 9 }).byteLength,
    packages: [...bytes]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${(n / 1024).toFixed(0)} KiB`),
  };
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
      name: 'core bundle with its dependencies: min+gzip',
      unit: 'bytes',
      value: all.gz,
      ratio: all.gz / own.gz,
      ratioOf: 'vs core alone',
      note: `minified ${(all.min / 1024).toFixed(1)} KiB: ${all.packages.join(', ')} (minified, before gzip)`,
    },
  ];
}
