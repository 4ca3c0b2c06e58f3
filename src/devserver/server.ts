/**
 * `startDevServer`: PostgREST RPC, Realtime and Auth subsets over one HTTP port,
 * on PGlite (in memory or in a directory) or a PostgreSQL server.
 *
 * @example
 * ```ts
 * const server = await startDevServer({ port: 0 });
 * const supabase = createClient(server.url, server.anonKey, { realtime: { transport: WebSocket } });
 * await server.stop();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AuthService } from './auth.js';
import { openPreparedMemoryDatabase } from './boot-cache.js';
import { type Database, openDatabase } from './database.js';
import { Faults } from './faults.js';
import { DEFAULT_MAX_JSON_DEPTH, parseRequestUrl, sendJson, sendPreflight } from './http.js';
import { signJwt } from './jwt.js';
import { defaultMigrationsDir, prepareDatabase } from './migrate.js';
import { loadPeers, peersFor } from './peers.js';
import { handleRpc, SchemaCache } from './postgrest.js';
import { RealtimeServer } from './realtime/server.js';

/**
 * Options of {@link startDevServer}.
 *
 * @example
 * ```ts
 * const options: DevServerOptions = { port: 0, database: process.env.DATABASE_URL ?? 'memory', accessTokenTtl: 5 };
 * ```
 */
export interface DevServerOptions {
  /** TCP port (default 54321, the Supabase CLI's); 0 picks a free one. */
  port?: number;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /**
   * `'memory'` (default): PGlite in memory; a directory: PGlite persisted there; a
   * `postgres://` URL: a PostgreSQL server (the dev server must be its only consumer
   * of realtime changes).
   */
  database?: string;
  /** HS256 secret for every JWT (default: the Supabase CLI's local secret, {@link DEFAULT_JWT_SECRET}). */
  jwtSecret?: string;
  /** Directories of `*.sql` migrations (default: userdb's own supabase/migrations). */
  migrationsDir?: string | readonly string[];
  /** Lifetime of issued access tokens in seconds (default 3600). */
  accessTokenTtl?: number;
  /** Largest accepted request body in bytes (default 8 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /**
   * Deepest nesting of arrays and objects accepted in a JSON request body (default 512);
   * deeper bodies get 400 before any SQL runs.
   */
  maxJsonDepth?: number;
  /** Realtime records over this many bytes are cut down (default 1 MiB, as Realtime). */
  maxRecordBytes?: number;
  /** Allow anonymous sign-ins (default true). */
  anonymousSignIns?: boolean;
}

/**
 * A running dev server.
 *
 * @example
 * ```ts
 * const server: DevServer = await startDevServer({ port: 0 });
 * const supabase = createClient(server.url, server.anonKey, { realtime: { transport: WebSocket } });
 * await server.restart();
 * await server.stop();
 * ```
 */
export interface DevServer {
  /** The base URL to give `createClient`, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** A long-lived JWT with role `anon`. */
  readonly anonKey: string;
  /** A long-lived JWT with role `service_role`. */
  readonly serviceRoleKey: string;
  /** The HS256 secret every token is signed with. */
  readonly jwtSecret: string;
  /** Fault injection for tests (all off by default). */
  readonly faults: Faults;
  /** The database the server runs on (for assertions and fixtures; queries run as superuser). */
  readonly db: Database;
  /** Stops the HTTP server and every socket, then starts again on the same port and data. */
  restart(): Promise<void>;
  /** Stops everything and closes the database. */
  stop(): Promise<void>;
}

/**
 * The Supabase CLI's local JWT secret (public knowledge: for local development only).
 * With it, {@link DevServer.anonKey} and {@link DevServer.serviceRoleKey} are the
 * well-known keys `supabase start` prints.
 *
 * @example
 * ```ts
 * const server = await startDevServer(); // server.jwtSecret === DEFAULT_JWT_SECRET
 * ```
 */
export const DEFAULT_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
/** `exp` of the Supabase CLI's local keys (2032-11-12). */
const LOCAL_KEYS_EXP = 1983812996;

function kongError(message: string, hint: string) {
  return { message, hint };
}

/** A path segment percent-decoded as UTF-8, or `undefined` when its encoding is malformed. */
function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function malformedPath(path: string) {
  return {
    code: 'PGRST100',
    details: `The request path ${JSON.stringify(path)} is not valid percent-encoded UTF-8`,
    hint: null,
    message: 'Malformed percent-encoding in the request path',
  };
}

/**
 * Starts a dev server. Its engines are optional peer dependencies of `supabase-userdb`
 * (`@electric-sql/pglite` for `'memory'` or a directory, `pg` for a `postgres://` URL, and `ws`):
 * when some are not installed it throws a `MissingPeerDependencyError` naming them.
 *
 * @example
 * ```ts
 * const server = await startDevServer({ port: 0, database: 'memory', accessTokenTtl: 60 });
 * console.log(server.url, server.anonKey);
 * ```
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const location = options.database ?? 'memory';
  const jwtSecret = options.jwtSecret ?? DEFAULT_JWT_SECRET;
  const migrationsDirs =
    options.migrationsDir === undefined
      ? [defaultMigrationsDir()]
      : typeof options.migrationsDir === 'string'
        ? [options.migrationsDir]
        : [...options.migrationsDir];
  const maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
  const maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const accessTokenTtl = options.accessTokenTtl ?? 3600;
  // The same claims as the Supabase CLI's keys: with the default secret they are the
  // well-known local keys, so an app configured for `supabase start` works unchanged.
  const anonKey = signJwt({ iss: 'supabase-demo', role: 'anon', exp: LOCAL_KEYS_EXP }, jwtSecret);
  const serviceRoleKey = signJwt(
    { iss: 'supabase-demo', role: 'service_role', exp: LOCAL_KEYS_EXP },
    jwtSecret,
  );
  const apiKeys = new Set([anonKey, serviceRoleKey]);

  // the optional peers this database needs, all named at once when some are missing
  const { ws } = await loadPeers(peersFor(location));

  let db: Database;
  if (location === 'memory') {
    db = await openPreparedMemoryDatabase(migrationsDirs);
  } else {
    db = await openDatabase(location);
    try {
      await prepareDatabase(db, { migrationsDirs });
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  let realtime: RealtimeServer;
  let auth: AuthService;
  let schemaCache = new SchemaCache();
  let unlistenSchema: (() => Promise<void>) | undefined;
  const faults = new Faults({
    closeAllSockets: () => realtime.closeAllSockets(),
    releaseHeldBroadcasts: () => realtime.releaseHeldBroadcasts(),
  });
  let port = options.port ?? 54321;
  let url = '';
  let http: Server | undefined;
  const sockets = new Set<Socket>();

  const build = async () => {
    schemaCache = new SchemaCache();
    const cache = schemaCache;
    unlistenSchema = await db.listen('pgrst', (payload) => cache.notify(payload));
    realtime = new RealtimeServer({
      db,
      jwtSecret,
      ws,
      broadcastFate: (delivery) => faults.broadcastFate(delivery),
      ...(options.maxRecordBytes === undefined ? {} : { maxRecordBytes: options.maxRecordBytes }),
    });
    auth = new AuthService({
      db,
      jwtSecret,
      issuer: () => `${url}/auth/v1`,
      accessTokenTtl,
      maxBodyBytes,
      maxJsonDepth,
      anonymousSignIns: options.anonymousSignIns ?? true,
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (faults.isOffline) {
      req.socket.destroy();
      return;
    }
    if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    if (faults.isOffline) {
      req.socket.destroy();
      return;
    }
    const requestUrl = parseRequestUrl(req.url);
    if (requestUrl === undefined) {
      sendJson(req, res, 400, { message: 'Invalid request URL' });
      return;
    }
    const path = requestUrl.pathname;
    if (req.method === 'OPTIONS') {
      sendPreflight(req, res);
      return;
    }
    const isRest = path.startsWith('/rest/v1/');
    const isAuth = path.startsWith('/auth/v1/');
    if (!isRest && !isAuth) {
      sendJson(req, res, 404, { message: 'no Route matched with those values' });
      return;
    }
    const header = req.headers.apikey;
    const apiKey = typeof header === 'string' ? header : requestUrl.searchParams.get('apikey');
    if (apiKey === null || apiKey === '') {
      sendJson(
        req,
        res,
        401,
        kongError('No API key found in request', 'No `apikey` request header or url param was found.'),
      );
      return;
    }
    if (!apiKeys.has(apiKey)) {
      sendJson(
        req,
        res,
        401,
        kongError('Invalid API key', 'Double check your Supabase `anon` or `service_role` API key.'),
      );
      return;
    }
    if (isAuth) {
      await auth.handle(req, res, path.slice('/auth/v1'.length), requestUrl);
      return;
    }
    const rpc = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(path);
    if (rpc !== null) {
      const fnName = decodePathSegment(rpc[1] ?? '');
      if (fnName === undefined) {
        sendJson(req, res, 400, malformedPath(path));
        return;
      }
      await handleRpc(
        req,
        res,
        { db, jwtSecret, faults, maxBodyBytes, maxJsonDepth, schemaCache },
        fnName,
        requestUrl,
      );
      return;
    }
    const table = decodePathSegment(path.slice('/rest/v1/'.length));
    if (table === undefined) {
      sendJson(req, res, 400, malformedPath(path));
      return;
    }
    sendJson(req, res, 404, {
      code: 'PGRST205',
      details: null,
      hint: 'The userdb dev server serves functions only: /rest/v1/rpc/<function>.',
      message: `Could not find the table 'public.${table}' in the schema cache`,
    });
  };

  const listen = async (): Promise<void> => {
    const server = createServer((req, res) => {
      handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          sendJson(req, res, 500, {
            code: 'XX000',
            details: null,
            hint: null,
            message: error instanceof Error ? error.message : String(error),
          });
        } else {
          res.destroy();
        }
      });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.on('upgrade', (req, socket, head) => {
      // A target URL cannot parse (e.g. `//`) is refused like any other path, never thrown.
      const requestUrl = parseRequestUrl(req.url);
      socket.on('error', () => socket.destroy());
      if (faults.isOffline || requestUrl === undefined || requestUrl.pathname !== '/realtime/v1/websocket') {
        socket.destroy();
        return;
      }
      // The same keys as the HTTP routes: only the project's anon and service_role keys
      // open a socket (a user's access token or any other signed JWT is no API key).
      const header = req.headers.apikey;
      const apiKey = requestUrl.searchParams.get('apikey') ?? (typeof header === 'string' ? header : '');
      if (!apiKeys.has(apiKey)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      realtime.handleUpgrade(req, socket, head, requestUrl);
    });
    // What Node's parser refuses gets the status Node itself would send (431 for headers
    // over its 16 KiB limit, 400 otherwise), not a reset connection.
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        const status =
          error.code === 'HPE_HEADER_OVERFLOW'
            ? '431 Request Header Fields Too Large'
            : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
              ? '408 Request Timeout'
              : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else {
        socket.destroy();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    port = (server.address() as AddressInfo).port;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    http = server;
  };

  const shutdown = async (): Promise<void> => {
    const server = http;
    http = undefined;
    await realtime.stop();
    await unlistenSchema?.().catch(() => undefined);
    unlistenSchema = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
      // Let clients in this process see the closed keep-alive connections before the
      // port serves again, so they open new ones instead of reusing dead ones.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  try {
    await build();
    await listen();
    await realtime!.start();
  } catch (error) {
    await shutdown().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw error;
  }

  return {
    get url() {
      return url;
    },
    anonKey,
    serviceRoleKey,
    jwtSecret,
    faults,
    get db() {
      return db;
    },
    async restart() {
      await shutdown();
      if (location !== 'memory') {
        // A persisted database is closed and opened again, so a restart proves the data survived.
        await db.close();
        db = await openDatabase(location);
      }
      await prepareDatabase(db, { migrationsDirs });
      await build();
      await listen();
      await realtime.start();
    },
    async stop() {
      await shutdown();
      await db.close();
    },
  };
}
