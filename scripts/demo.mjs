#!/usr/bin/env node
// `npm run demo`: builds the demo PWA, starts the dev server (PGlite, persisted in .pgdata/demo) and
// serves the app; prints the URL; stops cleanly on Ctrl-C / SIGTERM.
//
//   npm run demo                      # app on :4173, dev server on :54321 (free ports if taken)
//   npm run demo -- --memory          # throw-away database
//   npm run demo -- --no-build        # serve the existing demo/dist (or --dist <dir>)
//   npm run demo -- --dev             # Vite dev server with hot reload, for working on the demo
//   npm run demo -- --port 8080 --api-port 54322 --host 0.0.0.0
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tsImport } from 'tsx/esm/api';

const USAGE = `Usage: npm run demo -- [--port 4173] [--api-port 54321] [--host 127.0.0.1] [--memory | --data <dir>] [--no-build] [--dist <dir>] [--dev]

  --port      the app's port (default 4173; a free one if that is taken)
  --api-port  the dev server's port (default 54321; a free one if that is taken)
  --host      interface to bind (default 127.0.0.1)
  --data      PGlite directory of the dev server (default .pgdata/demo)
  --memory    a throw-away in-memory database instead
  --no-build  serve an existing build instead of building first
  --dist      serve this build (implies --no-build; default demo/dist)
  --dev       serve the sources with Vite's dev server (hot reload, no service worker)
`;

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'api-port': { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' },
    memory: { type: 'boolean' },
    'no-build': { type: 'boolean' },
    dist: { type: 'string' },
    dev: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function port(value, fallback) {
  if (value === undefined) return { port: fallback, explicit: false };
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    process.stderr.write(`demo: invalid port ${value}\n${USAGE}`);
    process.exit(2);
  }
  return { port: n, explicit: true };
}

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);

if (!values['no-build'] && !values.dev && values.dist === undefined) {
  process.stdout.write('Building the demo…\n');
  const { build } = await import('vite');
  await build({ configFile: 'demo/vite.config.ts', logLevel: 'warn' });
}

const serve = await tsImport('../demo/server/serve.ts', import.meta.url);
const dataDir = values.data ?? '.pgdata/demo';
const database = values.memory ? 'memory' : dataDir;
const app = port(values.port, 4173);
const api = port(values['api-port'], 54321);
const host = values.host ?? '127.0.0.1';

async function start() {
  // A taken default port falls back to a free one; an explicit one must be free.
  const attempts = [
    { appPort: app.port, apiPort: api.port },
    { appPort: app.explicit ? app.port : 0, apiPort: api.explicit ? api.port : 0 },
  ];
  let lastError;
  for (const ports of attempts) {
    try {
      return await serve.startDemo({
        ...ports,
        host,
        database,
        dev: values.dev === true,
        ...(values.dist === undefined ? {} : { dir: values.dist }),
        ...(values.memory ? {} : { jwtSecret: serve.persistentSecret(dataDir) }),
      });
    } catch (e) {
      lastError = e;
      if (e?.code !== 'EADDRINUSE') throw e;
    }
  }
  throw lastError;
}

const demo = await start();
process.stdout.write(
  [
    '',
    `  userdb demo:   ${demo.appUrl}`,
    `  dev server:    ${demo.devServer.url}  (database: ${database})`,
    '',
    '  Open the demo in two browser windows (or a normal and a private one), sign in as the same',
    '  user in both, toggle "simulate offline" in one, edit, and watch the other catch up.',
    '  Ctrl-C to stop.',
    '',
  ].join('\n'),
);

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\nStopping (${signal})…\n`);
  demo.stop().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`demo: ${e?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
