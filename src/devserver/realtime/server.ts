/**
 * The Realtime subset: a Phoenix websocket at `/realtime/v1/websocket` serving
 * `postgres_changes` and Broadcast (from the database and between clients), on public
 * and private channels. Changes and `realtime.messages` inserts come from the capture
 * triggers (sql/realtime.sql) through `NOTIFY`, in commit order. A change is delivered to
 * a channel only if it passes the binding's filter and the channel's user can select the
 * row, checked by selecting it as that user (role + `request.jwt.claims`), the way
 * Realtime's `apply_rls` does, for a whole batch of changes and subscribers in one query.
 * A broadcast goes to the channels of its topic (private ones only when their join was
 * authorized by the RLS policies of `realtime.messages`, see authorization.ts).
 *
 * @example
 * ```ts
 * const realtime = new RealtimeServer({ db, jwtSecret, ws: await import('ws') });
 * await realtime.start();
 * httpServer.on('upgrade', (req, socket, head) => realtime.handleUpgrade(req, socket, head));
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Database, Queryable } from '../database.js';
import type { BroadcastDelivery, BroadcastFate } from '../faults.js';
import { type JwtClaims, verifyJwt } from '../jwt.js';
import { ChannelAuthorization } from './authorization.js';
import { type ChangeColumn, matchesFilter, parseFilter, type RealtimeFilter } from './filter.js';
import {
  decodeBinaryFrame,
  decodeFrame,
  encodeFrame,
  encodeUserBroadcast,
  type PhoenixMessage,
  type UserBroadcast,
  type Vsn,
} from './phoenix.js';

/** Options of {@link RealtimeServer}. */
export interface RealtimeOptions {
  db: Database;
  jwtSecret: string;
  /** Records larger than this are cut down as Realtime does (default 1 MiB). */
  maxRecordBytes?: number;
  /** The `ws` package (an optional peer dependency, loaded by `startDevServer`). */
  ws: { WebSocketServer: typeof WebSocketServer };
  /** Decides the fate of each Broadcast frame to each socket (the dev server's faults). */
  broadcastFate?: (delivery: BroadcastDelivery) => BroadcastFate;
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
  /** `config.private`: broadcasts of this channel are authorized by RLS on realtime.messages. */
  private: boolean;
  /** Whether the channel receives broadcasts (always for public channels). */
  broadcastRead: boolean;
  /** Whether the channel's own broadcasts are relayed; undefined until first checked. */
  broadcastWrite: boolean | undefined;
  /** `config.broadcast.self`: the sender receives its own broadcasts too. */
  self: boolean;
  /** `config.broadcast.ack`: each client broadcast is answered. */
  ack: boolean;
}

interface Client {
  /** Distinct per socket of this server. */
  id: number;
  ws: WebSocket;
  /** Broadcast frames held back by a fault, sent after the next one. */
  held: (Buffer | string)[];
  vsn: Vsn;
  apiKey: string;
  channels: Map<string, Channel>;
  /** The client's messages are handled one after another, in the order they came. */
  queue: Promise<void>;
}

interface CapturedChange {
  type: ChangeType;
  schema: string;
  table: string;
  commit_timestamp: string;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
}

/** A `realtime.messages` insert (extension `broadcast`), as the capture trigger queues it. */
interface CapturedMessage {
  type: 'BROADCAST';
  id: string;
  topic: string | null;
  event: string | null;
  private: boolean;
  payload: unknown;
  binary_payload: string | null;
}

interface TableInfo {
  rls: boolean;
  replicaIdentityFull: boolean;
  /** Columns as listed in a change: name and type name. */
  columns: ChangeColumn[];
  /** The SQL type of each column (`format_type`), for casts in visibility checks. */
  sqlTypes: Map<string, string>;
  primaryKey: string[];
}

/** What a postgres change needs once visibility is known. */
interface PlannedChange {
  kind: 'change';
  change: CapturedChange;
  info: TableInfo;
  tooLarge: boolean;
  record: Record<string, unknown> | null;
  oldRecord: Record<string, unknown> | null;
  /** Channels that passed the filters, with the index of their visibility check. */
  targets: { client: Client; channel: Channel; bindings: Binding[]; check: number; key: number }[];
}

/** One (identity, table) of a batch: the rows whose visibility it asks for. */
interface VisibilityCheck {
  role: string;
  claims: string;
  rel: string;
  info: TableInfo;
  rls: boolean;
  keys: unknown[][];
  keyIndex: Map<string, number>;
}

const TOO_LARGE = 'Error 413: Payload Too Large';
/** Values larger than this many bytes are dropped from an oversized record (Realtime's rule). */
const SMALL_VALUE_BYTES = 64;
/** Captured changes and messages are kept this long for every listening server to read them. */
const CHANGE_RETENTION_SECONDS = 120;
const GARBAGE_COLLECTION_INTERVAL_MS = 30_000;
/** How long table metadata (columns, primary key, RLS) is trusted without a re-read. */
const TABLE_INFO_TTL_MS = 2000;
/** Captured changes read and delivered per database round trip. */
const BATCH = 1000;
/** The longest transaction delivery keeps open on its PostgreSQL connection. */
const MAX_DELIVERY_TRANSACTION_MS = 250;
/** How long an idle delivery transaction waits for the next notification before ending. */
const DELIVERY_LINGER_MS = 500;
/** How long this server's rows in `_userdb_realtime.listeners` are valid, and how often they are renewed. */
const LISTENER_TTL_SECONDS = 60;
const LISTENER_REFRESH_MS = 20_000;
/** Node timers cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
const unauthorized = (subTopic: string) =>
  `You do not have permissions to read from this Channel topic: ${subTopic}`;

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

/** The record's own properties among `keys` (never inherited ones such as `constructor`). */
function pick(record: Record<string, unknown> | null, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (record === null) return out;
  for (const key of keys) if (Object.hasOwn(record, key)) out[key] = record[key];
  return out;
}

function dropLargeValues(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (Buffer.byteLength(JSON.stringify(value) ?? 'null') <= SMALL_VALUE_BYTES) out[key] = value;
  }
  return out;
}

function isUserBroadcast(content: UserBroadcast | Record<string, unknown>): content is UserBroadcast {
  return Buffer.isBuffer(content.payload) && (content.encoding === 'json' || content.encoding === 'binary');
}

/** A broadcast's event name (empty when a client's JSON broadcast has none). */
function broadcastEvent(content: UserBroadcast | Record<string, unknown>): string {
  if (isUserBroadcast(content)) return content.event;
  return typeof content.event === 'string' ? content.event : '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The realtime websocket endpoint and change fan-out. */
export class RealtimeServer {
  readonly #o: RealtimeOptions;
  readonly #auth: ChannelAuthorization;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  #nextBindingId = 1;
  #nextClientId = 1;
  #unlisten: (() => Promise<void>) | undefined;
  #draining: Promise<void> | undefined;
  #drainAgain = false;
  /**
   * Captured changes in the order their NOTIFYs arrived (commit order): the change's JSON
   * when it came in the notification, else only its id (read from the table).
   */
  #pending: { id: string; text: string | undefined }[] = [];
  #lastGarbageCollection = 0;
  /** Wakes a delivery transaction waiting for the next notification. */
  #notified: (() => void) | undefined;
  #stopped = false;
  #delivered = 0;
  /** This server's id in `_userdb_realtime.listeners`. */
  readonly #serverId = randomUUID();
  /** The listener rows last written (JSON of the pairs), and the queue of their updates. */
  #listenerKey = '';
  #listenerUpdates: Promise<void> = Promise.resolve();
  #listenerTimer: NodeJS.Timeout | undefined;
  /** Table metadata, re-read when a few seconds old or when the row's columns changed. */
  readonly #tables = new Map<string, { info: TableInfo | undefined; at: number }>();

  constructor(options: RealtimeOptions) {
    this.#o = options;
    this.#auth = new ChannelAuthorization(options.db);
    this.#wss = new options.ws.WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  }

  /** How many `postgres_changes` and broadcast messages were sent so far. */
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
      const colon = payload.indexOf(':');
      const id = colon === -1 ? payload : payload.slice(0, colon);
      if (!/^\d+$/.test(id)) return;
      this.#pending.push({ id, text: colon === -1 ? undefined : payload.slice(colon + 1) });
      this.#notified?.();
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
    this.#notified?.();
    this.closeAllSockets();
    clearInterval(this.#listenerTimer);
    this.#listenerTimer = undefined;
    this.#listenerKey = '';
    await this.#listenerUpdates;
    await this.#o.db
      .query('delete from _userdb_realtime.listeners where server_id = $1', [this.#serverId])
      .catch(() => undefined); // the database may be gone already; the rows expire anyway
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    await unlisten?.().catch(() => undefined);
    await this.#draining?.catch(() => undefined);
  }

  /** Sends the Broadcast frames a fault held back, to the sockets still open. */
  releaseHeldBroadcasts(): void {
    for (const client of this.#clients) {
      const held = client.held.splice(0);
      if (!this.#open(client)) continue;
      for (const frame of held) {
        client.ws.send(frame);
        this.#delivered++;
      }
    }
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
      const client: Client = {
        id: this.#nextClientId++,
        ws,
        held: [],
        vsn,
        apiKey,
        channels: new Map(),
        queue: Promise.resolve(),
      };
      this.#clients.add(client);
      ws.on('message', (data, isBinary) => {
        const bytes = Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.isBuffer(data)
            ? data
            : Buffer.from(data);
        let message: PhoenixMessage | undefined;
        let broadcast: UserBroadcast | undefined;
        if (isBinary) {
          // vsn 2.0.0 sends broadcasts as binary "user broadcast push" frames; anything
          // else binary is ignored.
          const push = vsn === '2.0.0' ? decodeBinaryFrame(bytes) : undefined;
          if (push === undefined) return;
          message = {
            join_ref: push.join_ref,
            ref: push.ref,
            topic: push.topic,
            event: 'broadcast',
            payload: {},
          };
          broadcast = push.broadcast;
        } else {
          message = decodeFrame(bytes.toString('utf8'), vsn);
          if (message === undefined) {
            // Phoenix crashes the socket on an undecodable frame; the client reconnects.
            ws.close(1007, 'invalid frame');
            return;
          }
        }
        const msg = message;
        client.queue = client.queue.then(async () => {
          try {
            await this.#handle(client, msg, broadcast);
          } catch {
            this.#crash(client, msg.topic);
          }
        });
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
    client.held = [];
    this.#clients.delete(client);
    void this.#syncListeners().catch(() => undefined);
  }

  /** The (schema, table) pairs the open `postgres_changes` bindings can match (`'*'`: any table). */
  #wantedListeners(): [string, string][] {
    const pairs = new Map<string, [string, string]>();
    for (const client of this.#clients) {
      for (const channel of client.channels.values()) {
        for (const b of channel.bindings) {
          const pair: [string, string] = [b.schema, b.table ?? '*'];
          pairs.set(JSON.stringify(pair), pair);
        }
      }
    }
    return [...pairs.values()].sort((a, b) => (a.join('.') < b.join('.') ? -1 : 1));
  }

  /**
   * Writes this server's rows of `_userdb_realtime.listeners` (what the capture trigger asks
   * before doing any work) when the wanted set changed, or renews them (`renew`). Serialized.
   */
  #syncListeners(renew = false): Promise<void> {
    const run = async () => {
      if (this.#stopped) return;
      const wanted = this.#wantedListeners();
      const key = JSON.stringify(wanted);
      if (!renew && key === this.#listenerKey) return;
      await this.#o.db.query(
        `with wanted as (select x ->> 0 as s, x ->> 1 as t from jsonb_array_elements($2::jsonb) x),
         gone as (
           delete from _userdb_realtime.listeners l
            where l.server_id = $1
              and not exists (select 1 from wanted w where w.s = l.schema_name and w.t = l.table_name))
         insert into _userdb_realtime.listeners (server_id, schema_name, table_name, expires_at)
         select $1, s, t, clock_timestamp() + make_interval(secs => $3) from wanted
         on conflict (server_id, schema_name, table_name) do update set expires_at = excluded.expires_at`,
        [this.#serverId, key, LISTENER_TTL_SECONDS],
      );
      this.#listenerKey = key;
      if (wanted.length > 0 && this.#listenerTimer === undefined) {
        this.#listenerTimer = setInterval(() => {
          void this.#syncListeners(true).catch(() => undefined);
        }, LISTENER_REFRESH_MS);
        this.#listenerTimer.unref();
      } else if (wanted.length === 0) {
        clearInterval(this.#listenerTimer);
        this.#listenerTimer = undefined;
      }
    };
    const next = this.#listenerUpdates.then(run, run);
    this.#listenerUpdates = next.catch(() => undefined);
    return next;
  }

  #drop(client: Client): void {
    this.#forget(client);
    client.ws.terminate();
  }

  #open(client: Client): boolean {
    return client.ws.readyState === client.ws.OPEN;
  }

  #send(client: Client, message: PhoenixMessage): void {
    if (!this.#open(client)) return;
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
    if (channel.bindings.length > 0) void this.#syncListeners().catch(() => undefined);
    this.#send(client, {
      join_ref: channel.joinRef,
      ref: channel.joinRef,
      topic: channel.topic,
      event: 'phx_close',
      payload: {},
    });
  }

  async #handle(client: Client, msg: PhoenixMessage, broadcast: UserBroadcast | undefined): Promise<void> {
    if (msg.topic === 'phoenix') {
      if (msg.event === 'heartbeat') this.#reply(client, msg, 'ok', {});
      return;
    }
    if (msg.event === 'phx_join') {
      await this.#join(client, msg);
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
        await this.#accessToken(client, channel, msg.payload.access_token);
        return;
      case 'broadcast':
        await this.#clientBroadcast(client, channel, msg, broadcast);
        return;
      case 'presence':
        if (msg.ref !== null) {
          this.#reply(client, msg, 'error', {
            reason: 'presence is not supported by the userdb dev server',
          });
        }
        return;
      default:
        return; // Realtime ignores unexpected messages
    }
  }

  /**
   * The checks a token must pass to be used on a channel, after its signature and `exp`:
   * its role must be one `authenticator` may become, and on a private channel it must be
   * allowed to read the topic's broadcasts. The refusal text when it is not.
   */
  async #authorize(
    channel: Pick<Channel, 'subTopic' | 'private'>,
    claims: JwtClaims,
  ): Promise<string | undefined> {
    const role = String(claims.role);
    if ((await this.#auth.roleAccess(role)) !== 'allowed') return unauthorized(channel.subTopic);
    if (!channel.private) return undefined;
    const read = await this.#auth.canRead({ topic: channel.subTopic, role, claims });
    return read ? undefined : unauthorized(channel.subTopic);
  }

  async #join(client: Client, msg: PhoenixMessage): Promise<void> {
    if (!msg.topic.startsWith('realtime:')) {
      this.#reply(client, msg, 'error', { reason: 'unmatched topic' });
      return;
    }
    const previous = client.channels.get(msg.topic);
    if (previous !== undefined) this.#close(client, previous);

    const subTopic = msg.topic.slice('realtime:'.length);
    if (subTopic === '') {
      this.#reply(client, msg, 'error', { reason: 'TopicNameRequired: You must provide a topic name' });
      return;
    }
    const config = isRecord(msg.payload.config) ? msg.payload.config : {};
    const broadcastConfig = isRecord(config.broadcast) ? config.broadcast : {};
    const isPrivate = config.private === true;
    const token = typeof msg.payload.access_token === 'string' ? msg.payload.access_token : client.apiKey;
    const check = tokenError(token, this.#o.jwtSecret);
    if ('reason' in check) {
      this.#reply(client, msg, 'error', { reason: check.reason });
      return;
    }
    const refusal = await this.#authorize({ subTopic, private: isPrivate }, check.claims);
    if (refusal !== undefined) {
      this.#reply(client, msg, 'error', { reason: `Unauthorized: ${refusal}` });
      return;
    }
    const params = Array.isArray(config.postgres_changes) ? (config.postgres_changes as unknown[]) : [];
    const bindings: Binding[] = [];
    const echoed: Record<string, unknown>[] = [];
    const errors: string[] = [];
    for (const raw of params) {
      if (!isRecord(raw)) continue;
      const p = raw;
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
      subTopic,
      joinRef: msg.join_ref,
      bindings: errors.length === 0 ? bindings : [],
      token,
      claims: check.claims,
      role: String(check.claims.role),
      expiryTimer: undefined,
      private: isPrivate,
      broadcastRead: true,
      broadcastWrite: isPrivate ? undefined : true,
      self: broadcastConfig.self === true,
      ack: broadcastConfig.ack === true,
    };
    client.channels.set(msg.topic, channel);
    this.#armExpiry(client, channel);
    this.#reply(client, msg, 'ok', { postgres_changes: echoed });
    if (echoed.length === 0) return;
    if (errors.length > 0) {
      this.#system(client, channel, 'postgres_changes', 'error', errors.join('; '));
      return;
    }
    // Tables added to the publication since the start get their capture trigger now, and
    // the capture learns that this server listens, before the channel is told the change
    // feed is ready.
    this.#tables.clear();
    this.#o.db
      .query('select _userdb_realtime.sync_triggers()')
      .then(() => this.#syncListeners())
      .then(
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

  /** A new token for a joined channel: checked like a join's; the channel closes when it fails. */
  async #accessToken(client: Client, channel: Channel, token: unknown): Promise<void> {
    if (typeof token !== 'string' || token === channel.token || token.startsWith('sb_')) return;
    const check = tokenError(token, this.#o.jwtSecret);
    if ('reason' in check) {
      this.#shutdown(client, channel, check.reason.replace(/^[A-Za-z]+: /, ''));
      return;
    }
    const refusal = await this.#authorize(channel, check.claims);
    if (client.channels.get(channel.topic) !== channel) return; // left or rejoined meanwhile
    if (refusal !== undefined) {
      this.#shutdown(client, channel, refusal);
      return;
    }
    channel.token = token;
    channel.claims = check.claims;
    channel.role = String(check.claims.role);
    // Write access is checked again with the new token on the next broadcast.
    if (channel.private) channel.broadcastWrite = undefined;
    this.#armExpiry(client, channel);
  }

  // Broadcast -----------------------------------------------------------------

  /**
   * A broadcast pushed by a client: relayed to the other channels of the same topic (and
   * to the sender with `self`); on a private channel only when the sender may insert into
   * realtime.messages for the topic; otherwise dropped without a reply, as Realtime does.
   */
  async #clientBroadcast(
    client: Client,
    channel: Channel,
    msg: PhoenixMessage,
    broadcast: UserBroadcast | undefined,
  ): Promise<void> {
    if (channel.broadcastWrite === undefined) {
      const allowed = await this.#auth.canWrite({
        topic: channel.subTopic,
        role: channel.role,
        claims: channel.claims,
      });
      if (client.channels.get(channel.topic) !== channel) return;
      channel.broadcastWrite = allowed;
    }
    if (!channel.broadcastWrite) return;
    this.#fanOut(channel.subTopic, channel.private, broadcast ?? msg.payload, undefined, channel);
    if (channel.ack && msg.ref !== null) this.#reply(client, msg, 'ok', {});
  }

  /**
   * Sends a broadcast to every channel of (topic, private) allowed to read it. `content` is a
   * user broadcast (binary frame for vsn 2.0.0) or a JSON map (a text frame).
   */
  #fanOut(
    subTopic: string,
    isPrivate: boolean,
    content: UserBroadcast | Record<string, unknown>,
    metadata: Record<string, unknown> | undefined,
    sender: Channel | undefined,
  ): void {
    const encoded = new Map<string, Buffer | string | null>();
    for (const client of this.#clients) {
      if (!this.#open(client)) continue;
      for (const channel of client.channels.values()) {
        if (channel.subTopic !== subTopic || channel.private !== isPrivate || !channel.broadcastRead)
          continue;
        if (channel === sender && !channel.self) continue;
        const key = `${client.vsn}\u0000${channel.topic}`;
        let frame = encoded.get(key);
        if (frame === undefined) {
          frame = this.#encodeBroadcast(client.vsn, channel.topic, content, metadata);
          encoded.set(key, frame);
        }
        if (frame === null) continue;
        const fate =
          this.#o.broadcastFate?.({
            topic: subTopic,
            event: broadcastEvent(content),
            private: isPrivate,
            sub: typeof channel.claims.sub === 'string' ? channel.claims.sub : undefined,
            socket: client.id,
          }) ?? 'deliver';
        if (fate === 'drop') continue;
        if (fate === 'hold') {
          client.held.push(frame);
          continue;
        }
        const times = fate === 'duplicate' ? 2 : 1;
        for (let i = 0; i < times; i++) {
          client.ws.send(frame);
          this.#delivered++;
        }
        // frames held back go out after this one: reordered
        for (const late of client.held.splice(0)) {
          client.ws.send(late);
          this.#delivered++;
        }
      }
    }
  }

  #encodeBroadcast(
    vsn: Vsn,
    topic: string,
    content: UserBroadcast | Record<string, unknown>,
    metadata: Record<string, unknown> | undefined,
  ): Buffer | string | null {
    if (!isUserBroadcast(content)) {
      return encodeFrame({ join_ref: null, ref: null, topic, event: 'broadcast', payload: content }, vsn);
    }
    const user = content;
    if (vsn === '2.0.0') return encodeUserBroadcast(topic, user, metadata) ?? null;
    // vsn 1.0.0 has no binary frames: a JSON payload is converted, a binary one dropped.
    if (user.encoding !== 'json') return null;
    let payload: unknown;
    try {
      payload = JSON.parse(user.payload.toString('utf8'));
    } catch {
      return null;
    }
    const body: Record<string, unknown> = { event: user.event, payload, type: 'broadcast' };
    if (metadata !== undefined) body.meta = metadata;
    return encodeFrame({ join_ref: null, ref: null, topic, event: 'broadcast', payload: body }, vsn);
  }

  /** A committed insert into realtime.messages, delivered as Realtime's replication does. */
  #deliverMessage(message: CapturedMessage): void {
    if (typeof message.topic !== 'string' || typeof message.event !== 'string') return;
    let broadcast: UserBroadcast;
    if (typeof message.binary_payload === 'string') {
      broadcast = {
        event: message.event,
        encoding: 'binary',
        payload: Buffer.from(message.binary_payload, 'base64'),
      };
    } else if (message.payload !== null && message.payload !== undefined) {
      broadcast = {
        event: message.event,
        encoding: 'json',
        payload: Buffer.from(JSON.stringify(message.payload)),
      };
    } else {
      return;
    }
    this.#fanOut(message.topic, message.private === true, broadcast, { id: message.id }, undefined);
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
    const db = this.#o.db;
    while (this.#pending.length > 0 && !this.#stopped) {
      if (db.kind === 'postgres') {
        // On PostgreSQL the RPCs share a small pool: under load, every delivery query would
        // wait behind them for a connection. So delivery keeps one connection while
        // notifications keep coming (it lets go after a short idle wait), committing and
        // beginning again every few hundred milliseconds so that no long transaction holds
        // back vacuum.
        await db.transaction(async (tx) => {
          let began = Date.now();
          do {
            await this.#drainBatch(tx);
            if (Date.now() - began > MAX_DELIVERY_TRANSACTION_MS) {
              await tx.query('commit');
              await tx.query('begin');
              began = Date.now();
            }
            if (this.#pending.length === 0) await this.#nextNotification(DELIVERY_LINGER_MS);
          } while (this.#pending.length > 0 && !this.#stopped);
        });
      } else {
        await this.#drainBatch(db);
      }
    }
    // pruning old captured changes must not hold up the next deliveries
    if (Date.now() - this.#lastGarbageCollection > GARBAGE_COLLECTION_INTERVAL_MS)
      void this.#collectGarbage().catch(() => undefined);
  }

  /** Resolves when a notification arrives, or after `ms`. */
  #nextNotification(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#notified = undefined;
        resolve();
      }, ms);
      this.#notified = () => {
        clearTimeout(timer);
        this.#notified = undefined;
        resolve();
      };
    });
  }

  async #drainBatch(q: Queryable): Promise<void> {
    const batch = this.#pending.splice(0, BATCH);
    // Changes too large for a notification are read from the table. Every listening
    // server reads the rows (nobody takes them out), so several dev servers can share a
    // database; old rows are collected after a while.
    const stored = batch.filter((p) => p.text === undefined).map((p) => p.id);
    const byId = new Map<string, string>();
    if (stored.length > 0) {
      const rows = await q.query<{ id: string; change: string }>(
        `select id::text as id, change::text as change from _userdb_realtime.changes
         where id = any(string_to_array($1, ',')::bigint[])`,
        [stored.join(',')],
      );
      for (const row of rows) byId.set(row.id, row.change);
    }
    const changes: (CapturedChange | CapturedMessage)[] = [];
    for (const { id, text } of batch) {
      const json = text ?? byId.get(id);
      if (json !== undefined) changes.push(JSON.parse(json) as CapturedChange | CapturedMessage);
    }
    await this.#deliver(q, changes);
  }

  async #collectGarbage(): Promise<void> {
    this.#lastGarbageCollection = Date.now();
    await this.#o.db.query(
      `delete from _userdb_realtime.changes where captured_at < now() - make_interval(secs => $1)`,
      [CHANGE_RETENTION_SECONDS],
    );
    // Delivered broadcasts: hosted Realtime keeps them in daily partitions for a few days
    // (for replay); the dev server keeps them as long as the change queue.
    await this.#o.db.query(
      `delete from realtime.messages where inserted_at < localtimestamp - make_interval(secs => $1)`,
      [CHANGE_RETENTION_SECONDS],
    );
  }

  async #tableInfo(q: Queryable, change: CapturedChange): Promise<TableInfo | undefined> {
    const key = `${change.schema}.${change.table}`;
    const cached = this.#tables.get(key);
    if (cached !== undefined && Date.now() - cached.at < TABLE_INFO_TTL_MS) {
      const names = cached.info?.columns.map((c) => c.name);
      const record = change.record ?? change.old_record ?? {};
      const same =
        names !== undefined &&
        names.length === Object.keys(record).length &&
        names.every((n) => Object.hasOwn(record, n));
      if (same) return cached.info;
    }
    const rows = await q.query<{ rls: boolean; replident: string; columns: string; pk: string }>(
      `select c.relrowsecurity as rls, c.relreplident::text as replident,
         (select coalesce(json_agg(json_build_object('name', a.attname, 'type', t.typname,
                   'sql', pg_catalog.format_type(a.atttypid, a.atttypmod)) order by a.attnum), '[]'::json)
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
    let info: TableInfo | undefined;
    if (row !== undefined) {
      const columns = JSON.parse(row.columns) as { name: string; type: string; sql: string }[];
      info = {
        rls: row.rls,
        replicaIdentityFull: row.replident === 'f',
        columns: columns.map((c) => ({ name: c.name, type: c.type })),
        sqlTypes: new Map(columns.map((c) => [c.name, c.sql])),
        primaryKey: JSON.parse(row.pk) as string[],
      };
    }
    this.#tables.set(key, { info, at: Date.now() });
    return info;
  }

  /**
   * Delivers a batch of captured changes and messages in their commit order. The
   * visibility of every (change, subscriber identity) pair of the batch is decided by one
   * query (`_userdb_realtime.visible`): the columns each role may select and, on tables
   * with row level security, whether each identity can select each changed row.
   */
  async #deliver(q: Queryable, changes: readonly (CapturedChange | CapturedMessage)[]): Promise<void> {
    const plans: (PlannedChange | CapturedMessage)[] = [];
    const checks: VisibilityCheck[] = [];
    const checkIndex = new Map<string, number>();
    for (const change of changes) {
      if (change.type === 'BROADCAST') {
        plans.push(change);
        continue;
      }
      const plan = await this.#plan(q, change, checks, checkIndex);
      if (plan !== undefined) plans.push(plan);
    }
    let visible: { cols: Set<string>; keys: Set<number> }[] = [];
    if (checks.length > 0) {
      const input = checks.map((c) => ({
        role: c.role,
        claims: c.claims,
        rel: c.rel,
        sql: c.rls && c.keys.length > 0 ? this.#visibilitySql(c.info, c.rel) : null,
        keys: c.keys,
      }));
      const rows = await q.query<{ i: number; cols: string[] | string; keys: number[] | string }>(
        'select i, cols, keys from _userdb_realtime.visible($1::jsonb)',
        [JSON.stringify(input)],
      );
      visible = checks.map(() => ({ cols: new Set<string>(), keys: new Set<number>() }));
      for (const row of rows) {
        const slot = visible[Number(row.i) - 1];
        if (slot === undefined) continue;
        for (const col of parseArray(row.cols)) slot.cols.add(col);
        for (const key of parseArray(row.keys)) slot.keys.add(Number(key));
      }
    }
    for (const plan of plans) {
      if (this.#stopped) return;
      if ('kind' in plan) this.#sendChange(plan, checks, visible);
      else this.#deliverMessage(plan);
    }
  }

  /** `select` of the 1-based indexes of `$1`'s keys whose row the current role can see. */
  #visibilitySql(info: TableInfo, rel: string): string {
    const where = info.primaryKey
      .map((column, i) => `x.${quoteIdent(column)} = (k.v->>${i})::${info.sqlTypes.get(column) ?? 'text'}`)
      .join(' and ');
    return `select coalesce(array_agg(k.i::int), '{}') from jsonb_array_elements($1) with ordinality as k(v, i)
      where exists (select 1 from ${rel} x where ${where})`;
  }

  async #plan(
    q: Queryable,
    change: CapturedChange,
    checks: VisibilityCheck[],
    checkIndex: Map<string, number>,
  ): Promise<PlannedChange | undefined> {
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
    if (candidates.length === 0) return undefined;
    const info = await this.#tableInfo(q, change);
    if (info === undefined || info.primaryKey.length === 0) return undefined;

    // What Realtime's wal2json stream knows: the new row, and of the old row only the
    // replica identity (the primary key unless REPLICA IDENTITY FULL; only the primary key
    // of a DELETE on a table with row level security, which cannot be checked any more).
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
    const rel = `${quoteIdent(change.schema)}.${quoteIdent(change.table)}`;
    const keyValues = info.primaryKey.map((column) => (newRecord ?? identity)?.[column] ?? null);
    const keyText = JSON.stringify(keyValues);
    const targets: PlannedChange['targets'] = [];
    for (const c of candidates) {
      const bindings = c.bindings.filter(
        (b) => b.filters === undefined || matchesFilter(b.filters, filterTarget, info.columns),
      );
      if (bindings.length === 0) continue;
      if (typeof c.channel.claims.exp === 'number' && c.channel.claims.exp <= now) continue;
      const claims = JSON.stringify(c.channel.claims);
      const id = `${c.channel.role}\u0000${claims}\u0000${rel}`;
      let check = checkIndex.get(id);
      if (check === undefined) {
        check = checks.length;
        checkIndex.set(id, check);
        checks.push({
          role: c.channel.role,
          claims,
          rel,
          info,
          rls: info.rls,
          keys: [],
          keyIndex: new Map(),
        });
      }
      const slot = checks[check] as VisibilityCheck;
      // Row level security is not checked for a DELETE (the row is gone), as in Realtime.
      let key = -1;
      if (change.type !== 'DELETE' && info.rls) {
        key = slot.keyIndex.get(keyText) ?? -1;
        if (key === -1) {
          slot.keys.push(keyValues);
          key = slot.keys.length;
          slot.keyIndex.set(keyText, key);
        }
      }
      targets.push({ ...c, bindings, check, key });
    }
    if (targets.length === 0) return undefined;
    return { kind: 'change', change, info, tooLarge, record, oldRecord, targets };
  }

  #sendChange(
    plan: PlannedChange,
    checks: readonly VisibilityCheck[],
    visible: readonly { cols: Set<string>; keys: Set<number> }[],
  ): void {
    const payloads = new Map<number, Record<string, unknown> | null>();
    for (const { client, channel, bindings, check, key } of plan.targets) {
      const seen = visible[check];
      if (seen === undefined || checks[check] === undefined) continue;
      if (key !== -1 && !seen.keys.has(key)) continue;
      let data = payloads.get(check);
      if (data === undefined) {
        data = this.#shape(plan, seen.cols);
        payloads.set(check, data);
      }
      // A role that may not select the primary key gets nothing (Realtime answers it an
      // "Error 401: Unauthorized" event without data; a DELETE would carry no column).
      if (data === null) continue;
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

  /** The change as a role sees it: only the columns it may select (apply_rls's rule). */
  #shape(plan: PlannedChange, cols: ReadonlySet<string>): Record<string, unknown> | null {
    const { change, info } = plan;
    if (!info.primaryKey.every((column) => cols.has(column))) return null;
    const selectable = info.columns.filter((c) => cols.has(c.name));
    const names = selectable.map((c) => c.name);
    const data: Record<string, unknown> = {
      schema: change.schema,
      table: change.table,
      commit_timestamp: change.commit_timestamp,
      type: change.type,
      columns: selectable,
      errors: plan.tooLarge ? [TOO_LARGE] : null,
    };
    if (plan.record !== null) data.record = pick(plan.record, names);
    if (change.type !== 'INSERT') data.old_record = pick(plan.oldRecord, names);
    return data;
  }
}

/** A Postgres array as either driver returns it: an array, or PGlite/pg text `{a,b}`. */
function parseArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string' || value === '{}' || value === '') return [];
  return value
    .slice(1, -1)
    .split(',')
    .map((v) => v.replace(/^"(.*)"$/s, '$1'));
}
