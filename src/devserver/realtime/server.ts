/**
 * The Realtime subset: a Phoenix websocket at `/realtime/v1/websocket` serving
 * `postgres_changes`. Changes come from the capture triggers (sql/realtime.sql)
 * through `NOTIFY`; each one is delivered to a channel only if it passes the
 * binding's filter and the channel's user can select the row, checked by selecting
 * it as that user (role + `request.jwt.claims`), the way Realtime's `apply_rls` does.
 *
 * @example
 * ```ts
 * const realtime = new RealtimeServer({ db, jwtSecret, ws: await import('ws') });
 * await realtime.start();
 * httpServer.on('upgrade', (req, socket, head) => realtime.handleUpgrade(req, socket, head));
 * ```
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Database, Queryable } from '../database.js';
import { type JwtClaims, verifyJwt } from '../jwt.js';
import { type ChangeColumn, matchesFilter, parseFilter, type RealtimeFilter } from './filter.js';
import { decodeFrame, encodeFrame, type PhoenixMessage, type Vsn } from './phoenix.js';

/** Options of {@link RealtimeServer}. */
export interface RealtimeOptions {
  db: Database;
  jwtSecret: string;
  /** Records larger than this are cut down as Realtime does (default 1 MiB). */
  maxRecordBytes?: number;
  /** The `ws` package (an optional peer dependency, loaded by `startDevServer`). */
  ws: { WebSocketServer: typeof WebSocketServer };
}

type ChangeType = 'INSERT' | 'UPDATE' | 'DELETE';

interface Binding {
  id: number;
  event: '*' | ChangeType;
  schema: string;
  table: string | undefined;
  filters: RealtimeFilter[] | undefined;
}

interface Channel {
  topic: string;
  subTopic: string;
  joinRef: string | null;
  bindings: Binding[];
  token: string;
  claims: JwtClaims;
  role: string;
  expiryTimer: NodeJS.Timeout | undefined;
}

interface Client {
  ws: WebSocket;
  vsn: Vsn;
  apiKey: string;
  channels: Map<string, Channel>;
}

interface CapturedChange {
  type: ChangeType;
  schema: string;
  table: string;
  commit_timestamp: string;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
}

interface TableInfo {
  rls: boolean;
  replicaIdentityFull: boolean;
  columns: ChangeColumn[];
  primaryKey: string[];
}

const TOO_LARGE = 'Error 413: Payload Too Large';
/** Values larger than this many bytes are dropped from an oversized record (Realtime's rule). */
const SMALL_VALUE_BYTES = 64;
/** Captured changes are kept this long for every listening server to read them. */
const CHANGE_RETENTION_SECONDS = 120;
const GARBAGE_COLLECTION_INTERVAL_MS = 30_000;
/** How long table metadata (columns, primary key, RLS) is trusted without a re-read. */
const TABLE_INFO_TTL_MS = 2000;
/** Node timers cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

function tokenError(token: string, secret: string): { claims: JwtClaims } | { reason: string } {
  const result = verifyJwt(token, secret);
  if (!result.ok) {
    if (result.reason === 'malformed')
      return { reason: 'MalformedJWT: The token provided is not a valid JWT' };
    if (result.reason === 'signature')
      return { reason: 'JwtSignatureError: Failed to validate JWT signature' };
    return { reason: `InvalidJWTToken: Token has expired ${result.expiredSeconds} seconds ago` };
  }
  if (typeof result.claims.role !== 'string' || typeof result.claims.exp !== 'number') {
    return { reason: 'InvalidJWTToken: Fields `role` and `exp` are required in JWT' };
  }
  return { claims: result.claims };
}

function pick(record: Record<string, unknown> | null, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (record === null) return out;
  for (const key of keys) if (key in record) out[key] = record[key];
  return out;
}

function dropLargeValues(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (Buffer.byteLength(JSON.stringify(value) ?? 'null') <= SMALL_VALUE_BYTES) out[key] = value;
  }
  return out;
}

/** The realtime websocket endpoint and change fan-out. */
export class RealtimeServer {
  readonly #o: RealtimeOptions;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  #nextBindingId = 1;
  #unlisten: (() => Promise<void>) | undefined;
  #draining: Promise<void> | undefined;
  #drainAgain = false;
  /** Ids of captured changes, in the order their NOTIFYs arrived: commit order. */
  #pending: string[] = [];
  #lastGarbageCollection = 0;
  #stopped = false;
  #delivered = 0;
  /** Table metadata, re-read when a few seconds old or when the row's columns changed. */
  readonly #tables = new Map<string, { info: TableInfo | undefined; at: number }>();

  constructor(options: RealtimeOptions) {
    this.#o = options;
    this.#wss = new options.ws.WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  }

  /** How many `postgres_changes` messages were sent so far. */
  get deliveredMessages(): number {
    return this.#delivered;
  }

  /** How many websockets are open. */
  get openSockets(): number {
    return this.#clients.size;
  }

  /**
   * Starts listening for captured changes. Only changes committed from now on are delivered
   * (Realtime does not replay); several servers can listen to one database.
   *
   * @example
   * ```ts
   * await realtime.start();
   * ```
   */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#collectGarbage();
    this.#unlisten = await this.#o.db.listen('_userdb_realtime', (payload) => {
      if (!/^\d+$/.test(payload)) return;
      this.#pending.push(payload);
      this.#scheduleDrain();
    });
  }

  /**
   * Closes every socket and stops listening.
   *
   * @example
   * ```ts
   * await realtime.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pending = [];
    this.closeAllSockets();
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    await unlisten?.().catch(() => undefined);
    await this.#draining?.catch(() => undefined);
  }

  /** Terminates every open websocket (clients see an abnormal closure). */
  closeAllSockets(): void {
    for (const client of this.#clients) this.#drop(client);
  }

  /**
   * Completes a websocket upgrade for `/realtime/v1/websocket`, or refuses it with 403
   * when the `apikey` is not a JWT signed with the server's secret.
   *
   * @example
   * ```ts
   * server.on('upgrade', (req, socket, head) => realtime.handleUpgrade(req, socket, head, url));
   * ```
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const header = req.headers.apikey;
    const apiKey = url.searchParams.get('apikey') ?? (typeof header === 'string' ? header : '');
    const check = tokenError(apiKey, this.#o.jwtSecret);
    if ('reason' in check || this.#stopped) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const vsn: Vsn = url.searchParams.get('vsn') === '2.0.0' ? '2.0.0' : '1.0.0';
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const client: Client = { ws, vsn, apiKey, channels: new Map() };
      this.#clients.add(client);
      ws.on('message', (data, isBinary) => {
        if (isBinary) return; // binary frames carry broadcasts, which the dev server does not relay
        const message = decodeFrame(data.toString(), vsn);
        if (message === undefined) {
          // Phoenix crashes the socket on an undecodable frame; the client reconnects.
          ws.close(1007, 'invalid frame');
          return;
        }
        try {
          this.#handle(client, message);
        } catch {
          this.#crash(client, message.topic);
        }
      });
      ws.on('close', () => this.#forget(client));
      ws.on('error', () => this.#drop(client));
    });
  }

  /** What Phoenix does when a channel process crashes: `phx_error` to the client, channel gone. */
  #crash(client: Client, topic: string): void {
    const channel = client.channels.get(topic);
    if (channel !== undefined) {
      clearTimeout(channel.expiryTimer);
      client.channels.delete(topic);
    }
    this.#send(client, {
      join_ref: channel?.joinRef ?? null,
      ref: channel?.joinRef ?? null,
      topic,
      event: 'phx_error',
      payload: {},
    });
  }

  #forget(client: Client): void {
    for (const channel of client.channels.values()) clearTimeout(channel.expiryTimer);
    client.channels.clear();
    this.#clients.delete(client);
  }

  #drop(client: Client): void {
    this.#forget(client);
    client.ws.terminate();
  }

  #send(client: Client, message: PhoenixMessage): void {
    if (client.ws.readyState !== client.ws.OPEN) return;
    client.ws.send(encodeFrame(message, client.vsn));
  }

  #reply(
    client: Client,
    msg: PhoenixMessage,
    status: 'ok' | 'error',
    response: Record<string, unknown>,
  ): void {
    this.#send(client, {
      join_ref: msg.join_ref,
      ref: msg.ref,
      topic: msg.topic,
      event: 'phx_reply',
      payload: { status, response },
    });
  }

  #system(
    client: Client,
    channel: Channel,
    extension: string,
    status: 'ok' | 'error',
    message: string,
  ): void {
    this.#send(client, {
      join_ref: null,
      ref: null,
      topic: channel.topic,
      event: 'system',
      payload: { extension, status, message, channel: channel.subTopic },
    });
  }

  #shutdown(client: Client, channel: Channel, message: string): void {
    this.#system(client, channel, 'system', 'error', message);
    this.#close(client, channel);
  }

  #close(client: Client, channel: Channel): void {
    clearTimeout(channel.expiryTimer);
    client.channels.delete(channel.topic);
    this.#send(client, {
      join_ref: channel.joinRef,
      ref: channel.joinRef,
      topic: channel.topic,
      event: 'phx_close',
      payload: {},
    });
  }

  #handle(client: Client, msg: PhoenixMessage): void {
    if (msg.topic === 'phoenix') {
      if (msg.event === 'heartbeat') this.#reply(client, msg, 'ok', {});
      return;
    }
    if (msg.event === 'phx_join') {
      this.#join(client, msg);
      return;
    }
    const channel = client.channels.get(msg.topic);
    if (channel === undefined) {
      if (msg.ref !== null) this.#reply(client, msg, 'error', { reason: 'unmatched topic' });
      return;
    }
    switch (msg.event) {
      case 'phx_leave':
        this.#reply(client, msg, 'ok', {});
        this.#close(client, channel);
        return;
      case 'access_token':
        this.#accessToken(client, channel, msg.payload.access_token);
        return;
      case 'broadcast':
      case 'presence':
        if (msg.ref !== null) {
          this.#reply(client, msg, 'error', {
            reason: `${msg.event} is not supported by the userdb dev server`,
          });
        }
        return;
      default:
        return; // Realtime ignores unexpected messages
    }
  }

  #join(client: Client, msg: PhoenixMessage): void {
    if (!msg.topic.startsWith('realtime:')) {
      this.#reply(client, msg, 'error', { reason: 'unmatched topic' });
      return;
    }
    const previous = client.channels.get(msg.topic);
    if (previous !== undefined) this.#close(client, previous);

    const config = (msg.payload.config ?? {}) as Record<string, unknown>;
    const token = typeof msg.payload.access_token === 'string' ? msg.payload.access_token : client.apiKey;
    const check = tokenError(token, this.#o.jwtSecret);
    if ('reason' in check) {
      this.#reply(client, msg, 'error', { reason: check.reason });
      return;
    }
    if (config.private === true) {
      this.#reply(client, msg, 'error', {
        reason: 'PrivateChannels: private channels are not supported by the userdb dev server',
      });
      return;
    }
    const params = Array.isArray(config.postgres_changes) ? (config.postgres_changes as unknown[]) : [];
    const bindings: Binding[] = [];
    const echoed: Record<string, unknown>[] = [];
    const errors: string[] = [];
    for (const raw of params) {
      if (typeof raw !== 'object' || raw === null) continue;
      const p = raw as Record<string, unknown>;
      const id = this.#nextBindingId++;
      echoed.push({ ...p, id });
      const event = typeof p.event === 'string' ? p.event.toUpperCase() : '*';
      let filters: RealtimeFilter[] | undefined;
      if (typeof p.filter === 'string' && p.filter.trim() !== '') {
        const parsed = parseFilter(p.filter);
        if (parsed.ok) filters = parsed.filters;
        else errors.push(parsed.message);
      }
      if (event !== '*' && event !== 'INSERT' && event !== 'UPDATE' && event !== 'DELETE') {
        errors.push(`Error parsing \`event\` params: ${String(p.event)}`);
        continue;
      }
      bindings.push({
        id,
        event,
        schema: typeof p.schema === 'string' ? p.schema : 'public',
        table: typeof p.table === 'string' && p.table !== '*' ? p.table : undefined,
        filters,
      });
    }
    const channel: Channel = {
      topic: msg.topic,
      subTopic: msg.topic.slice('realtime:'.length),
      joinRef: msg.join_ref,
      bindings: errors.length === 0 ? bindings : [],
      token,
      claims: check.claims,
      role: String(check.claims.role),
      expiryTimer: undefined,
    };
    client.channels.set(msg.topic, channel);
    this.#armExpiry(client, channel);
    this.#reply(client, msg, 'ok', { postgres_changes: echoed });
    if (echoed.length === 0) return;
    if (errors.length > 0) {
      this.#system(client, channel, 'postgres_changes', 'error', errors.join('; '));
      return;
    }
    // Tables added to the publication since the start get their capture trigger now,
    // before the channel is told the change feed is ready.
    this.#tables.clear();
    this.#o.db.query('select _userdb_realtime.sync_triggers()').then(
      () => {
        if (client.channels.get(channel.topic) === channel) {
          this.#system(client, channel, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL');
        }
      },
      (error: unknown) => {
        this.#system(
          client,
          channel,
          'postgres_changes',
          'error',
          `Unable to subscribe to changes: ${String(error)}`,
        );
      },
    );
  }

  #armExpiry(client: Client, channel: Channel): void {
    clearTimeout(channel.expiryTimer);
    channel.expiryTimer = undefined;
    const exp = channel.claims.exp;
    if (typeof exp !== 'number') return;
    const ms = exp * 1000 - Date.now();
    if (ms > MAX_TIMER_MS) return;
    channel.expiryTimer = setTimeout(
      () => {
        const seconds = Math.max(0, Math.floor(Date.now() / 1000) - exp);
        this.#shutdown(client, channel, `Token has expired ${seconds} seconds ago`);
      },
      Math.max(0, ms),
    );
    channel.expiryTimer.unref();
  }

  #accessToken(client: Client, channel: Channel, token: unknown): void {
    if (typeof token !== 'string' || token === channel.token || token.startsWith('sb_')) return;
    const check = tokenError(token, this.#o.jwtSecret);
    if ('reason' in check) {
      this.#shutdown(client, channel, check.reason.replace(/^[A-Za-z]+: /, ''));
      return;
    }
    channel.token = token;
    channel.claims = check.claims;
    channel.role = String(check.claims.role);
    this.#armExpiry(client, channel);
  }

  // Change fan-out ------------------------------------------------------------

  #scheduleDrain(): void {
    if (this.#stopped) return;
    if (this.#draining !== undefined) {
      this.#drainAgain = true;
      return;
    }
    this.#draining = (async () => {
      try {
        do {
          this.#drainAgain = false;
          await this.#drain();
        } while (this.#drainAgain && !this.#stopped);
      } catch {
        // The database went away (stop/restart); queued changes are dropped, as Realtime drops them.
      } finally {
        this.#draining = undefined;
      }
    })();
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0 && !this.#stopped) {
      const batch = this.#pending.splice(0, 100);
      // Every listening server reads the rows (nobody takes them out), so several dev
      // servers can share a database; old rows are collected after a while.
      const rows = await this.#o.db.query<{ id: string; change: string }>(
        `select id::text as id, change::text as change from _userdb_realtime.changes
         where id = any(string_to_array($1, ',')::bigint[])`,
        [batch.join(',')],
      );
      const byId = new Map(rows.map((row) => [row.id, row.change]));
      for (const id of batch) {
        if (this.#stopped) return;
        const change = byId.get(id);
        if (change !== undefined) await this.#dispatch(JSON.parse(change) as CapturedChange);
      }
    }
    if (Date.now() - this.#lastGarbageCollection > GARBAGE_COLLECTION_INTERVAL_MS)
      await this.#collectGarbage();
  }

  async #collectGarbage(): Promise<void> {
    this.#lastGarbageCollection = Date.now();
    await this.#o.db.query(
      `delete from _userdb_realtime.changes where captured_at < now() - make_interval(secs => $1)`,
      [CHANGE_RETENTION_SECONDS],
    );
  }

  async #tableInfo(change: CapturedChange): Promise<TableInfo | undefined> {
    const key = `${change.schema}.${change.table}`;
    const cached = this.#tables.get(key);
    if (cached !== undefined && Date.now() - cached.at < TABLE_INFO_TTL_MS) {
      const names = cached.info?.columns.map((c) => c.name);
      const record = change.record ?? change.old_record ?? {};
      const same =
        names !== undefined && names.length === Object.keys(record).length && names.every((n) => n in record);
      if (same) return cached.info;
    }
    const rows = await this.#o.db.query<{ rls: boolean; replident: string; columns: string; pk: string }>(
      `select c.relrowsecurity as rls, c.relreplident::text as replident,
         (select coalesce(json_agg(json_build_object('name', a.attname, 'type', t.typname) order by a.attnum), '[]'::json)
            from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)::text as columns,
         (select coalesce(json_agg(a.attname order by a.attnum), '[]'::json)
            from pg_catalog.pg_index i
            join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = c.oid and i.indisprimary)::text as pk
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relname = $2`,
      [change.schema, change.table],
    );
    const row = rows[0];
    const info =
      row === undefined
        ? undefined
        : {
            rls: row.rls,
            replicaIdentityFull: row.replident === 'f',
            columns: JSON.parse(row.columns) as ChangeColumn[],
            primaryKey: JSON.parse(row.pk) as string[],
          };
    this.#tables.set(key, { info, at: Date.now() });
    return info;
  }

  async #dispatch(change: CapturedChange): Promise<void> {
    const candidates: { client: Client; channel: Channel; bindings: Binding[] }[] = [];
    for (const client of this.#clients) {
      for (const channel of client.channels.values()) {
        const bindings = channel.bindings.filter(
          (b) =>
            (b.event === '*' || b.event === change.type) &&
            (b.schema === '*' || b.schema === change.schema) &&
            (b.table === undefined || b.table === change.table),
        );
        if (bindings.length > 0) candidates.push({ client, channel, bindings });
      }
    }
    if (candidates.length === 0) return;
    const info = await this.#tableInfo(change);
    if (info === undefined || info.primaryKey.length === 0) return;

    // What Realtime's wal2json stream knows: the new row, and of the old row only the
    // replica identity (the primary key unless REPLICA IDENTITY FULL).
    const identity =
      info.replicaIdentityFull && !(change.type === 'DELETE' && info.rls)
        ? change.old_record
        : pick(change.old_record, info.primaryKey);
    const newRecord = change.type === 'DELETE' ? null : change.record;
    const filterTarget = change.type === 'DELETE' ? identity : newRecord;

    let record = newRecord;
    let oldRecord = change.type === 'INSERT' ? null : identity;
    const size = Buffer.byteLength(JSON.stringify({ record, oldRecord }));
    const tooLarge = size > (this.#o.maxRecordBytes ?? 1024 * 1024);
    if (tooLarge) {
      record = record === null ? null : dropLargeValues(record);
      oldRecord = oldRecord === null ? null : dropLargeValues(oldRecord);
    }

    const now = Math.floor(Date.now() / 1000);
    const passing = candidates
      .map((c) => ({
        ...c,
        bindings: c.bindings.filter(
          (b) => b.filters === undefined || matchesFilter(b.filters, filterTarget, info.columns),
        ),
      }))
      .filter(
        (c) =>
          c.bindings.length > 0 && (typeof c.channel.claims.exp !== 'number' || c.channel.claims.exp > now),
      );
    if (passing.length === 0) return;

    let allowed: Set<string> | undefined;
    if (change.type !== 'DELETE' && newRecord !== null) {
      allowed = await this.#visibleTo(
        change,
        info,
        newRecord,
        passing.map((c) => c.channel),
      );
    }

    const data: Record<string, unknown> = {
      schema: change.schema,
      table: change.table,
      commit_timestamp: change.commit_timestamp,
      type: change.type,
      columns: info.columns,
      errors: tooLarge ? [TOO_LARGE] : null,
    };
    if (record !== null) data.record = record;
    if (change.type !== 'INSERT') data.old_record = oldRecord ?? {};
    for (const { client, channel, bindings } of passing) {
      if (allowed !== undefined && !allowed.has(this.#identityKey(channel))) continue;
      this.#send(client, {
        join_ref: null,
        ref: null,
        topic: channel.topic,
        event: 'postgres_changes',
        payload: { ids: bindings.map((b) => b.id), data },
      });
      this.#delivered++;
    }
  }

  #identityKey(channel: Channel): string {
    return `${channel.role}\u0000${JSON.stringify(channel.claims)}`;
  }

  /** Which (role, claims) can select the changed row, by selecting it as each of them. */
  async #visibleTo(
    change: CapturedChange,
    info: TableInfo,
    record: Record<string, unknown>,
    channels: readonly Channel[],
  ): Promise<Set<string>> {
    const groups = new Map<string, Channel>();
    for (const channel of channels) groups.set(this.#identityKey(channel), channel);
    const where = info.primaryKey.map((column, i) => `${quoteIdent(column)} = $${i + 1}`).join(' and ');
    const sql = `select exists(select 1 from ${quoteIdent(change.schema)}.${quoteIdent(change.table)} where ${where}) as ok`;
    const params = info.primaryKey.map((column) => {
      const value = record[column];
      return typeof value === 'string' || value === null || value === undefined
        ? (value ?? null)
        : JSON.stringify(value);
    });
    const visible = new Set<string>();
    const check = async (tx: Queryable, channel: Channel) => {
      await tx.query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", [
        channel.role,
        JSON.stringify(channel.claims),
      ]);
      const rows = await tx.query<{ ok: boolean }>(sql, params);
      return rows[0]?.ok === true;
    };
    const [only] = groups;
    if (groups.size === 1 && only !== undefined) {
      // One identity (the common case): no savepoint needed; an error means "not visible".
      const ok = await this.#o.db.transaction((tx) => check(tx, only[1])).catch(() => false);
      if (ok) visible.add(only[0]);
      return visible;
    }
    await this.#o.db.transaction(async (tx: Queryable) => {
      for (const [key, channel] of groups) {
        await tx.query('savepoint walrus');
        try {
          if (await check(tx, channel)) visible.add(key);
          await tx.query('release savepoint walrus');
        } catch {
          await tx.query('rollback to savepoint walrus');
        }
      }
    });
    return visible;
  }
}
