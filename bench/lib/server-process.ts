/**
 * The dev server in a process of its own (so its PGlite work does not block the clients' event
 * loop, as it would not with a real server): forked with tsx, reports `{url, anonKey}` over IPC,
 * stops on SIGTERM.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What a client needs to reach the server. */
export interface ServerAddress {
  url: string;
  anonKey: string;
}

/** A running dev server process. */
export interface ServerProcess extends ServerAddress {
  stop(): Promise<void>;
}

if (process.env.USERDB_BENCH_SERVER_CHILD === '1') {
  const { startDevServer } = await import('../../src/devserver/index.js');
  // Room for the 100k-row documents of the sync workloads (about 10 MB): the request body limit and
  // the document size limit (`userdb.max_bytes()`, 8 MiB by default) are raised to 64 MiB.
  const server = await startDevServer({
    port: 0,
    database: process.env.USERDB_BENCH_DB ?? 'memory',
    maxBodyBytes: 64 * 1024 * 1024,
  });
  await server.db.query(
    `create or replace function userdb.max_bytes() returns bigint language sql immutable parallel safe
       set search_path = '' as $$ select 67108864::bigint $$`,
  );
  process.send?.({ url: server.url, anonKey: server.anonKey });
  process.on('SIGTERM', () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

/** Starts the dev server (PGlite in memory unless `database` says otherwise) in a child process. */
export function startServerProcess(database = 'memory'): Promise<ServerProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, USERDB_BENCH_SERVER_CHILD: '1', USERDB_BENCH_DB: database },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the dev server process exited with ${code}`)));
    child.once('message', (message) => {
      const { url, anonKey } = message as ServerAddress;
      child.removeAllListeners('exit');
      resolve({
        url,
        anonKey,
        stop: () =>
          new Promise<void>((done) => {
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
