/**
 * {@link Remote} over supabase-js: `userdb_init`, `userdb_pull` and `userdb_patch` through
 * PostgREST RPC, the change Broadcasts of the private topic `userdb:<user id>` through Realtime
 * (`postgres_changes` on `public.user_databases` on a server without the change log), the session
 * through supabase-js Auth. The only module of userdb that talks to supabase-js.
 */
import type { SupabaseClient } from '@supabase/supabase-js';

export type { SupabaseClient };

import type { PatchOp } from '../doc/index.js';
import { AuthError, ForbiddenError, NetworkError, ServerError } from '../errors.js';
import { mapRpcError, toNetworkError } from './map-error.js';
import type {
  PatchBatch,
  PatchResult,
  Remote,
  RemoteAuthEvent,
  RemoteChange,
  RemoteDelta,
  RemotePull,
  RemoteSnapshot,
  RemoteSubscriptionHandlers,
} from './remote.js';
import {
  broadcastPayloadSchema,
  changesResponseSchema,
  InvalidChangeError,
  parseRemoteDoc,
  patchResponseSchema,
  realtimePayloadSchema,
  snapshotResponseSchema,
  tokenSchema,
} from './schemas.js';
import { sameToken } from './token.js';

/** Options of {@link SupabaseRemote}. */
export interface SupabaseRemoteOptions {
  /**
   * The user whose document this remote serves. When set, every call first checks that the
   * client's session still belongs to this user, so one user's outbox never reaches another's row.
   */
  userId?: string | undefined;
  /** Abort an RPC that has not answered after this many milliseconds (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /**
   * How changes reach this client: `'broadcast'` (the default: the private topic `userdb:<user id>`
   * fed by the server's change log) or `'postgres_changes'` (the whole record; servers without the
   * change log). A server that turns out not to have the change log (`userdb_pull` has no `delta`
   * argument) makes the remote switch to `'postgres_changes'` by itself.
   */
  realtime?: 'broadcast' | 'postgres_changes' | undefined;
  /**
   * `false`: never ask for changes, always whole documents (and `postgres_changes`), as a server
   * without the change log gets. Default `true`.
   */
  delta?: boolean | undefined;
}

/** The answer of an RPC: its data, or the PostgREST error as it came. */
type RpcAnswer =
  | { ok: true; data: unknown }
  | {
      ok: false;
      status: number;
      error: { code?: string; message?: string; details?: string | null };
    };

let channelCounter = 0;

/** Channels being removed, per client and topic (see `#subscribeBroadcast`). */
const LEAVING = new WeakMap<SupabaseClient, Map<string, Promise<unknown>>>();

function leaving(client: SupabaseClient, topic: string): Promise<unknown> {
  return LEAVING.get(client)?.get(topic) ?? Promise.resolve();
}

function setLeaving(client: SupabaseClient, topic: string, removal: Promise<unknown>): void {
  let byTopic = LEAVING.get(client);
  if (byTopic === undefined) {
    byTopic = new Map();
    LEAVING.set(client, byTopic);
  }
  const done = removal.catch(() => undefined);
  byTopic.set(topic, done);
  void done.then(() => {
    if (byTopic.get(topic) === done) byTopic.delete(topic);
  });
}

/** A `since` no change is newer than (the probe of {@link SupabaseRemote}). */
const FAR_FUTURE = '9999-12-31T00:00:00.000000Z';

function issuesText(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * The supabase-js implementation of {@link Remote}.
 *
 * @example
 * ```ts
 * const remote = new SupabaseRemote(supabase, { userId: session.user.id });
 * const snapshot = await remote.init();
 * const stop = remote.subscribe(session.user.id, { onSubscribed, onChange, onError });
 * ```
 */
export class SupabaseRemote implements Remote {
  readonly #client: SupabaseClient;
  readonly #userId: string | undefined;
  readonly #timeoutMs: number;
  /** `undefined` until a delta pull told: `false` once the server answered PGRST202 to it. */
  #deltaSupported: boolean | undefined;
  #realtime: 'broadcast' | 'postgres_changes';
  /** Re-subscribes the open subscription the other way (after the server turned out to be old). */
  #resubscribe: (() => void) | undefined;
  #probing = false;

  constructor(client: SupabaseClient, options: SupabaseRemoteOptions = {}) {
    this.#client = client;
    this.#userId = options.userId;
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#realtime = options.realtime ?? (options.delta === false ? 'postgres_changes' : 'broadcast');
    if (options.delta === false) this.#deltaSupported = false;
  }

  /** False once the server showed it has no change log (then pulls send whole documents). */
  get deltaSupported(): boolean | undefined {
    return this.#deltaSupported;
  }

  async currentUserId(): Promise<string | null> {
    try {
      const { data } = await this.#client.auth.getSession();
      return data.session?.user.id ?? null;
    } catch (e) {
      throw toNetworkError('auth.getSession', e);
    }
  }

  async init(): Promise<RemoteSnapshot> {
    const data = await this.#rpc('userdb_init', {});
    return this.#snapshot('userdb_init', data);
  }

  pull(since: string | null): Promise<RemoteSnapshot | null>;
  pull(since: string | null, options: { delta: true }): Promise<RemotePull | null>;
  async pull(since: string | null, options?: { delta: true }): Promise<RemoteSnapshot | RemotePull | null> {
    if (options?.delta !== true) {
      const data = await this.#rpc('userdb_pull', { since });
      return data === null || data === undefined ? null : this.#snapshot('userdb_pull', data);
    }
    if (this.#deltaSupported !== false) {
      const answer = await this.#call('userdb_pull', { since, delta: true });
      if (answer.ok) {
        this.#deltaSupported = true;
        return parsePullAnswer(answer.data, since);
      }
      if (answer.error.code !== 'PGRST202') {
        throw mapRpcError('userdb_pull', { status: answer.status, error: answer.error });
      }
      // a server without the change log: whole documents from now on, and postgres_changes
      this.#legacyServer();
    }
    const data = await this.#rpc('userdb_pull', { since });
    return data === null || data === undefined
      ? null
      : { kind: 'doc', snapshot: this.#snapshot('userdb_pull', data) };
  }

  async patch(batch: PatchBatch): Promise<PatchResult> {
    const data = await this.#rpc('userdb_patch', {
      ops: batch.ops,
      expected_updated_at: batch.expectedUpdatedAt,
      client_id: batch.clientId,
      batch_seq: batch.batchSeq,
    });
    const parsed = patchResponseSchema.safeParse(data);
    if (!parsed.success)
      throw new ServerError(`userdb_patch: unexpected answer: ${issuesText(parsed.error)}`);
    return { applied: parsed.data.applied, updatedAt: parsed.data.updated_at };
  }

  subscribe(userId: string, handlers: RemoteSubscriptionHandlers): () => void {
    let active = true;
    let stop =
      this.#realtime === 'broadcast'
        ? this.#subscribeBroadcast(userId, handlers, () => active)
        : this.#subscribeRows(userId, handlers, () => active);
    this.#resubscribe = () => {
      if (!active) return;
      stop();
      stop = this.#subscribeRows(userId, handlers, () => active);
    };
    return () => {
      if (!active) return;
      active = false;
      this.#resubscribe = undefined;
      stop();
    };
  }

  /** The private Broadcast topic `userdb:<user id>`, authorized by RLS on `realtime.messages`. */
  #subscribeBroadcast(
    userId: string,
    handlers: RemoteSubscriptionHandlers,
    active: () => boolean,
  ): () => void {
    const topic = `userdb:${userId}`;
    const client = this.#client;
    let open = true;
    let channel: ReturnType<SupabaseClient['channel']> | undefined;
    void (async () => {
      // realtime-js keeps one channel per topic and client, and drops every channel of a topic when
      // one of them closes: wait until an earlier channel of this topic is gone before joining
      await leaving(client, topic);
      for (const old of client.getChannels()) {
        if (old.topic === `realtime:${topic}`) await client.removeChannel(old).catch(() => undefined);
      }
      // a private join carries the user's access token: hand the session's token to Realtime first
      try {
        const { data } = await client.auth.getSession();
        const token = data.session?.access_token;
        if (token !== undefined) await client.realtime.setAuth(token);
      } catch {
        // no session yet: the join is refused, realtime-js retries, onAuthChange re-authorizes
      }
      if (!open || !active()) return;
      channel = client.channel(topic, { config: { private: true } });
      channel.on('broadcast', { event: 'change' }, (message: { payload?: unknown }) => {
        if (open && active()) handlers.onChange(toBroadcastChange(message.payload));
      });
      channel.subscribe((status, err) => {
        this.#onStatus(status, err, handlers, () => open && active());
        // a refused join on a server that may not have the change log: find out, and fall back
        if (status === 'CHANNEL_ERROR' && open && active() && this.#deltaSupported === undefined) {
          void this.#probeDelta();
        }
      });
    })();
    return () => {
      if (!open) return;
      open = false;
      if (channel !== undefined) setLeaving(client, topic, client.removeChannel(channel));
    };
  }

  /** `postgres_changes` of the user's row (servers without the change log). */
  #subscribeRows(userId: string, handlers: RemoteSubscriptionHandlers, active: () => boolean): () => void {
    channelCounter += 1;
    const channel = this.#client.channel(`userdb:${userId}:${channelCounter}`);
    let open = true;
    channel
      .on(
        'postgres_changes',
        { event: '*', schema: 'public', table: 'user_databases', filter: `user_id=eq.${userId}` },
        (payload: unknown) => {
          if (open && active()) handlers.onChange(toRemoteChange(payload));
        },
      )
      .subscribe((status, err) => this.#onStatus(status, err, handlers, () => open && active()));
    return () => {
      if (!open) return;
      open = false;
      void this.#client.removeChannel(channel).catch(() => undefined);
    };
  }

  #onStatus(
    status: string,
    err: Error | undefined,
    handlers: RemoteSubscriptionHandlers,
    active: () => boolean,
  ): void {
    if (!active()) return;
    if (status === 'SUBSCRIBED') handlers.onSubscribed();
    else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
      handlers.onError(
        new NetworkError(`realtime: ${status}${err ? ` (${err.message})` : ''}`, { cause: err }),
      );
    }
  }

  onAuthChange(listener: (event: RemoteAuthEvent) => void): () => void {
    const { data } = this.#client.auth.onAuthStateChange((event, session) => {
      const userId = session?.user.id ?? null;
      if (event === 'SIGNED_IN' || event === 'TOKEN_REFRESHED') {
        // supabase-js forwards refreshed tokens to Realtime as well; doing it here too keeps the
        // channel authorized even when a client was created with custom auth wiring.
        if (session?.access_token) void Promise.resolve(this.#client.realtime.setAuth(session.access_token));
        listener({ type: event === 'SIGNED_IN' ? 'signed_in' : 'token_refreshed', userId });
      } else if (event === 'SIGNED_OUT') {
        listener({ type: 'signed_out', userId: null });
      }
    });
    return () => data.subscription.unsubscribe();
  }

  /**
   * Asks `userdb_pull` with `delta` for nothing (a `since` in the far future answers `null`): a
   * server without the change log answers PGRST202, and then the remote switches to whole
   * documents and `postgres_changes`.
   */
  async #probeDelta(): Promise<void> {
    if (this.#probing || this.#deltaSupported !== undefined) return;
    this.#probing = true;
    try {
      const answer = await this.#call('userdb_pull', { since: FAR_FUTURE, delta: true });
      if (answer.ok) this.#deltaSupported = true;
      else if (answer.error.code === 'PGRST202') this.#legacyServer();
    } catch {
      // offline or signed out: the next refused join asks again
    } finally {
      this.#probing = false;
    }
  }

  #legacyServer(): void {
    this.#deltaSupported = false;
    if (this.#realtime === 'broadcast') {
      this.#realtime = 'postgres_changes';
      this.#resubscribe?.();
    }
  }

  async #checkUser(fn: string): Promise<void> {
    if (this.#userId === undefined) return;
    const current = await this.currentUserId();
    if (current === null) throw new AuthError(`${fn}: not signed in`);
    if (current !== this.#userId) {
      throw new ForbiddenError(`${fn}: the session belongs to another user than this local database`);
    }
  }

  async #rpc(fn: string, args: Record<string, unknown>): Promise<unknown> {
    const answer = await this.#call(fn, args);
    if (!answer.ok) throw mapRpcError(fn, { status: answer.status, error: answer.error });
    return answer.data;
  }

  async #call(fn: string, args: Record<string, unknown>): Promise<RpcAnswer> {
    await this.#checkUser(fn);
    let response: {
      data: unknown;
      error: { code?: string; message?: string; details?: string | null } | null;
      status: number;
    };
    try {
      response = await this.#client.rpc(fn, args).abortSignal(AbortSignal.timeout(this.#timeoutMs));
    } catch (e) {
      throw toNetworkError(fn, e);
    }
    if (response.error) return { ok: false, status: response.status, error: response.error };
    return { ok: true, data: response.data };
  }

  #snapshot(fn: string, data: unknown): RemoteSnapshot {
    const parsed = snapshotResponseSchema.safeParse(data);
    if (!parsed.success) throw new ServerError(`${fn}: unexpected answer: ${issuesText(parsed.error)}`);
    return { doc: parseRemoteDoc(parsed.data.db, fn), updatedAt: parsed.data.updated_at };
  }
}

/**
 * Reads a realtime-js `postgres_changes` payload. The record is used only when it is whole and
 * valid: no `errors` (Realtime cuts records over its size limit), a token, and a document that
 * parses (an unchanged TOASTed `db` is simply absent). Otherwise the change is a bare poke.
 *
 * @example
 * ```ts
 * const change = toRemoteChange(payload);
 * if (change.snapshot === null) await remote.pull(base.updatedAt);
 * ```
 */
export function toRemoteChange(payload: unknown): RemoteChange {
  const parsed = realtimePayloadSchema.safeParse(payload);
  if (!parsed.success || parsed.data.eventType === 'DELETE' || !parsed.data.new) {
    return { updatedAt: null, snapshot: null };
  }
  const record = parsed.data.new;
  const token = tokenSchema.safeParse(record.updated_at);
  const updatedAt = token.success ? token.data : null;
  const errors = parsed.data.errors;
  const hasErrors = errors !== null && errors !== undefined && (!Array.isArray(errors) || errors.length > 0);
  if (updatedAt === null || hasErrors || !('db' in record)) return { updatedAt, snapshot: null };
  try {
    return { updatedAt, snapshot: { doc: parseRemoteDoc(record.db, 'realtime'), updatedAt } };
  } catch {
    return { updatedAt, snapshot: null };
  }
}

function toDelta(c: {
  before: string;
  after: string;
  ops?: unknown[] | null | undefined;
  client_id?: string | null | undefined;
  batch_seq?: number | null | undefined;
}): RemoteDelta {
  return {
    before: c.before,
    after: c.after,
    ops: (c.ops ?? null) as PatchOp[] | null,
    clientId: c.client_id ?? null,
    batchSeq: c.batch_seq ?? null,
  };
}

/**
 * Reads the answer of `userdb_pull(since, delta => true)`: `null`, `{db, updated_at}` or
 * `{changes, updated_at}`. A chain must start at `since` and be continuous up to `updated_at`;
 * anything else is an {@link InvalidChangeError} (the caller then asks for the document).
 *
 * @example
 * ```ts
 * const answer = parsePullAnswer(data, base.updatedAt); // { kind: 'changes', changes, updatedAt }
 * ```
 */
export function parsePullAnswer(data: unknown, since: string | null): RemotePull | null {
  if (data === null || data === undefined) return null;
  if (typeof data === 'object' && data !== null && 'changes' in data) {
    const parsed = changesResponseSchema.safeParse(data);
    if (!parsed.success) {
      throw new InvalidChangeError(`userdb_pull: malformed change chain: ${issuesText(parsed.error)}`);
    }
    const changes: RemoteDelta[] = [];
    let at = since;
    for (const [i, c] of parsed.data.changes.entries()) {
      // `before` is sent on the first change only; a change that has one must continue the chain
      const before = c.before ?? at;
      if (before === null || (at !== null && !sameToken(before, at))) {
        throw new InvalidChangeError(
          `userdb_pull: change ${i} starts at ${String(before)}, expected ${String(at)}: the chain is not continuous`,
        );
      }
      changes.push(toDelta({ ...c, before }));
      at = c.after;
    }
    if (!sameToken(at, parsed.data.updated_at)) {
      throw new InvalidChangeError(
        `userdb_pull: the chain ends at ${String(at)}, not at updated_at ${parsed.data.updated_at}`,
      );
    }
    return { kind: 'changes', changes, updatedAt: parsed.data.updated_at };
  }
  const parsed = snapshotResponseSchema.safeParse(data);
  if (!parsed.success) throw new ServerError(`userdb_pull: unexpected answer: ${issuesText(parsed.error)}`);
  return {
    kind: 'doc',
    snapshot: { doc: parseRemoteDoc(parsed.data.db, 'userdb_pull'), updatedAt: parsed.data.updated_at },
  };
}

/**
 * Reads the payload of a `change` Broadcast. A payload that does not parse is a bare poke (pull).
 *
 * @example
 * ```ts
 * const change = toBroadcastChange(message.payload); // change.delta?.ops: apply or pull
 * ```
 */
export function toBroadcastChange(payload: unknown): RemoteChange {
  const parsed = broadcastPayloadSchema.safeParse(payload);
  if (!parsed.success) return { updatedAt: null, snapshot: null };
  return { updatedAt: parsed.data.after, snapshot: null, delta: toDelta(parsed.data) };
}
