// Builds dist/: type-checked ESM + .d.ts via tsc, then copies the SQL assets the dev server reads.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
if (existsSync('src/devserver/sql')) cpSync('src/devserver/sql', 'dist/devserver/sql', { recursive: true });
