/**
 * Serves the built demo (`demo/dist`) and `/config.json` (the backend's URL and anon key, read by
 * the app at start-up, so the built app runs against whatever dev server is up without a rebuild),
 * and starts the whole demo: the dev server on PGlite plus the app server. Used by `npm run demo`
 * and by the end-to-end tests.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';

/** The built app's directory. */
export const DIST_DIR = fileURLToPath(new URL('../dist', import.meta.url));

/** What `/config.json` answers. */
export interface AppConfig {
  supabaseUrl: string;
  anonKey: string;
}

/** A running app server. */
export interface AppServer {
  readonly url: string;
  readonly server: Server;
  stop(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serves `dir` (unknown paths without an extension get `index.html`) and `/config.json`. */
export async function serveApp(options: {
  config: AppConfig;
  port?: number;
  host?: string;
  dir?: string;
}): Promise<AppServer> {
  const root = resolve(options.dir ?? DIST_DIR);
  if (!existsSync(join(root, 'index.html'))) {
    throw new Error(`${root}/index.html is missing: build the demo first (npm run demo:build)`);
  }
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/config.json') {
      const body = JSON.stringify(options.config);
      res.writeHead(200, { 'Content-Type': TYPES['.json'], 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    void sendFile(root, path, req.method === 'HEAD', res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`,
    server,
    stop: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

async function sendFile(
  root: string,
  path: string,
  head: boolean,
  res: import('node:http').ServerResponse,
): Promise<void> {
  let file = normalize(join(root, path));
  if (file !== root && !file.startsWith(root + sep)) {
    res.writeHead(403).end();
    return;
  }
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
  } catch {
    if (extname(path) !== '') {
      res.writeHead(404, { 'Content-Type': TYPES['.txt'] }).end('not found');
      return;
    }
    file = join(root, 'index.html');
  }
  try {
    const body = await readFile(file);
    const ext = extname(file);
    const immutable = file.startsWith(join(root, 'assets') + sep);
    res.writeHead(200, {
      'Content-Type': TYPES[ext] ?? 'application/octet-stream',
      // Hashed assets never change; the shell and the service worker must be revalidated.
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(head ? undefined : body);
  } catch {
    res.writeHead(404, { 'Content-Type': TYPES['.txt'] }).end('not found');
  }
}

/**
 * Serves the app from sources with Vite's dev server (hot reload; no service worker), plus
 * `/config.json`. For working on the demo itself.
 */
export async function serveAppDev(options: { config: AppConfig; port?: number; host?: string }): Promise<AppServer> {
  const { createServer } = await import('vite');
  const config = JSON.stringify(options.config);
  const vite = await createServer({
    configFile: fileURLToPath(new URL('../vite.config.ts', import.meta.url)),
    logLevel: 'warn',
    server: { port: options.port ?? 0, host: options.host ?? '127.0.0.1', strictPort: true },
    plugins: [
      {
        name: 'userdb-demo-config',
        configureServer(server) {
          server.middlewares.use('/config.json', (_req, res) => {
            res.writeHead(200, { 'Content-Type': TYPES['.json'] ?? 'application/json', 'Cache-Control': 'no-store' });
            res.end(config);
          });
        },
      },
    ],
  });
  await vite.listen();
  const address = vite.httpServer?.address() as AddressInfo | null;
  if (address === null || address === undefined) throw new Error('the Vite dev server is not listening');
  return {
    url: `http://${options.host === undefined || options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${address.port}/`,
    server: vite.httpServer as Server,
    stop: () => vite.close(),
  };
}

/** The whole demo: the dev server and the app server. */
export interface Demo {
  readonly appUrl: string;
  readonly devServer: DevServer;
  readonly app: AppServer;
  stop(): Promise<void>;
}

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** The app's port (0: a free one). */
  appPort?: number;
  /** The dev server's port (0: a free one). */
  apiPort?: number;
  host?: string;
  /** The dev server's database: `'memory'` or a PGlite directory (see `startDevServer`). */
  database?: string;
  /** Serve the sources with Vite's dev server (hot reload) instead of the build. */
  dev?: boolean;
  /** HS256 secret (a persistent database needs a stable one, so sessions survive restarts). */
  jwtSecret?: string;
  /** Lifetime of access tokens in seconds. */
  accessTokenTtl?: number;
  dir?: string;
}

/** Starts the dev server, then serves the built app pointing at it. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const host = options.host ?? '127.0.0.1';
  const devServer = await startDevServer({
    port: options.apiPort ?? 0,
    host,
    database: options.database ?? 'memory',
    ...(options.jwtSecret === undefined ? {} : { jwtSecret: options.jwtSecret }),
    ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }),
  });
  let app: AppServer;
  try {
    const config = { supabaseUrl: devServer.url, anonKey: devServer.anonKey };
    const port = options.appPort === undefined ? {} : { port: options.appPort };
    app = options.dev
      ? await serveAppDev({ config, host, ...port })
      : await serveApp({ config, host, ...port, ...(options.dir === undefined ? {} : { dir: options.dir }) });
  } catch (e) {
    await devServer.stop();
    throw e;
  }
  return {
    appUrl: app.url,
    devServer,
    app,
    async stop() {
      await app.stop();
      await devServer.stop();
    },
  };
}

/** A JWT secret kept in `dir/jwt-secret`, created on first use. */
export function persistentSecret(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
