#!/usr/bin/env node
// `npm run check:engines`: every package in package-lock.json that declares `engines.node` must
// accept every Node version our own `engines.node` promises (so a machine that meets our engines
// can install and run everything, dev dependencies included). Platform packages that npm skips
// elsewhere are checked too: their engines hold on every platform. The Node running the check
// must meet our engines too (CI runs what we promise). Exits 1 naming the offenders.
import { readFileSync } from 'node:fs';
import semver from 'semver';

const root = new URL('../', import.meta.url);
const ours = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).engines?.node;
if (typeof ours !== 'string' || semver.validRange(ours) === null) {
  process.stderr.write(`check-engines: package.json has no valid engines.node (${ours})\n`);
  process.exit(1);
}
if (!semver.satisfies(process.version, ours)) {
  process.stderr.write(`check-engines: this is node ${process.version}; package.json promises ${ours}\n`);
  process.exit(1);
}
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8'));
const bad = [];
let checked = 0;
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  const theirs = entry.engines?.node;
  if (path === '' || typeof theirs !== 'string') continue;
  checked++;
  const range = semver.validRange(theirs, { loose: true });
  if (range === null || !semver.subset(ours, range, { loose: true })) {
    bad.push(`  ${path.slice(path.lastIndexOf('node_modules/') + 13)}@${entry.version} wants node ${theirs}`);
  }
}
if (bad.length > 0) {
  process.stderr.write(
    `check-engines: package.json promises node ${ours}, but ${bad.length} installed package(s) ask for less:\n${bad.join('\n')}\nPin versions that support it, or raise engines.node.\n`,
  );
  process.exit(1);
}
process.stdout.write(`check-engines: ${checked} packages accept node ${ours}\n`);
