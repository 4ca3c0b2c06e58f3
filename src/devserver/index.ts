/**
 * `supabase-userdb/devserver`: a local backend that speaks what `@supabase/supabase-js`
 * speaks (PostgREST RPC, Realtime `postgres_changes`, GoTrue email/anonymous auth)
 * over PGlite or PostgreSQL, without Docker. For tests, demos and offline work.
 *
 * @example
 * ```ts
 * import { startDevServer } from 'supabase-userdb/devserver';
 * import { createClient } from '@supabase/supabase-js';
 * import WebSocket from 'ws';
 *
 * const server = await startDevServer({ port: 0 });
 * const supabase = createClient(server.url, server.anonKey, {
 *   auth: { persistSession: false },
 *   realtime: { transport: WebSocket },
 * });
 * ```
 */
export type { Database, Queryable, Row } from './database.js';
export { openDatabase } from './database.js';
export type {
  BroadcastDecider,
  BroadcastDelivery,
  BroadcastFate,
  RpcCall,
  RpcPredicate,
} from './faults.js';
export { Faults } from './faults.js';
export type { JwtClaims, JwtFailure, JwtVerification, SignJwtOptions, VerifyJwtOptions } from './jwt.js';
export { signJwt, verifyJwt } from './jwt.js';
export type { PrepareOptions, PrepareResult } from './migrate.js';
export { defaultMigrationsDir, prepareDatabase } from './migrate.js';
export type { DevServerPeer } from './peers.js';
export { MissingPeerDependencyError } from './peers.js';
export { statusForSqlState } from './postgrest.js';
export type { DevServer, DevServerOptions } from './server.js';
export { DEFAULT_JWT_SECRET, startDevServer } from './server.js';
