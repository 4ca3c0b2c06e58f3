#!/usr/bin/env node
/**
 * `supabase-userdb-dev`: runs the dev server from the command line.
 *
 * @example
 * ```sh
 * supabase-userdb-dev --port 54321 --db ./.userdb-data
 * DATABASE_URL=postgres://postgres:postgres@localhost:5432/postgres supabase-userdb-dev
 * ```
 */
import { parseArgs } from 'node:util';
import { startDevServer } from './server.js';

const USAGE = `Usage: supabase-userdb-dev [--port 54321] [--host 127.0.0.1] [--db memory|<dir>|postgres://…] [--jwt-secret <secret>]

  --port        TCP port (0 picks a free one; default 54321)
  --host        interface to bind (default 127.0.0.1)
  --db          'memory' (default), a directory for a persistent PGlite, or a postgres:// URL
                (default: $DATABASE_URL when set)
  --jwt-secret  HS256 secret for every JWT (default: $USERDB_JWT_SECRET, else the Supabase
                CLI's local secret, which makes the keys the well-known local ones)
  --migrations  a directory of *.sql migrations (repeatable; default: userdb's own)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
      'jwt-secret': { type: 'string' },
      migrations: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const port = values.port === undefined ? 54321 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`supabase-userdb-dev: invalid --port ${values.port}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const database = values.db ?? process.env.DATABASE_URL ?? 'memory';
  const jwtSecret = values['jwt-secret'] ?? process.env.USERDB_JWT_SECRET;
  const server = await startDevServer({
    port,
    ...(values.host === undefined ? {} : { host: values.host }),
    database,
    ...(jwtSecret === undefined ? {} : { jwtSecret }),
    ...(values.migrations === undefined ? {} : { migrationsDir: values.migrations }),
  });
  process.stdout.write(
    [
      'userdb dev server running',
      `  API URL:          ${server.url}`,
      `  Database:         ${database.replace(/\/\/[^@/]*@/, '//***@')}`,
      `  anon key:         ${server.anonKey}`,
      `  service_role key: ${server.serviceRoleKey}`,
      `  JWT secret:       ${server.jwtSecret}`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`supabase-userdb-dev: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`supabase-userdb-dev: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
