/**
 * {@link Remote} over supabase-js: `userdb_init`, `userdb_pull` and `userdb_patch` through
 * PostgREST RPC, `postgres_changes` on `public.user_databases` through Realtime, the session
 * through supabase-js Auth. The only module of userdb that talks to supabase-js.
 */
import type { SupabaseClient } from '@supabase/supabase-js';

export type { SupabaseClient };

import { AuthError, ForbiddenError, NetworkError, ServerError } from '../errors.js';
import { mapRpcError, toNetworkError } from './map-error.js';
import type {
  PatchBatch,
  PatchResult,
  Remote,
  RemoteAuthEvent,
  RemoteChange,
  RemoteSnapshot,
  RemoteSubscriptionHandlers,
} from './remote.js';
import {
  parseRemoteDoc,
  patchResponseSchema,
  realtimePayloadSchema,
  snapshotResponseSchema,
  tokenSchema,
} from './schemas.js';

/** Options of {@link SupabaseRemote}. */
export interface SupabaseRemoteOptions {
  /**
   * The user whose document this remote serves. When set, every call first checks that the
   * client's session still belongs to this user, so one user's outbox never reaches another's row.
   */
  userId?: string | undefined;
  /** Abort an RPC that has not answered after this many milliseconds (default 30 000). */
  requestTimeoutMs?: number | undefined;
}

let channelCounter = 0;

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

  constructor(client: SupabaseClient, options: SupabaseRemoteOptions = {}) {
    this.#client = client;
    this.#userId = options.userId;
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
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

  async pull(since: string | null): Promise<RemoteSnapshot | null> {
    const data = await this.#rpc('userdb_pull', { since });
    return data === null || data === undefined ? null : this.#snapshot('userdb_pull', data);
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
    channelCounter += 1;
    const channel = this.#client.channel(`userdb:${userId}:${channelCounter}`);
    let active = true;
    channel
      .on(
        'postgres_changes',
        { event: '*', schema: 'public', table: 'user_databases', filter: `user_id=eq.${userId}` },
        (payload: unknown) => {
          if (active) handlers.onChange(toRemoteChange(payload));
        },
      )
      .subscribe((status, err) => {
        if (!active) return;
        if (status === 'SUBSCRIBED') handlers.onSubscribed();
        else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
          handlers.onError(
            new NetworkError(`realtime: ${status}${err ? ` (${err.message})` : ''}`, { cause: err }),
          );
        }
      });
    return () => {
      if (!active) return;
      active = false;
      void this.#client.removeChannel(channel).catch(() => undefined);
    };
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

  async #checkUser(fn: string): Promise<void> {
    if (this.#userId === undefined) return;
    const current = await this.currentUserId();
    if (current === null) throw new AuthError(`${fn}: not signed in`);
    if (current !== this.#userId) {
      throw new ForbiddenError(`${fn}: the session belongs to another user than this local database`);
    }
  }

  async #rpc(fn: string, args: Record<string, unknown>): Promise<unknown> {
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
    if (response.error) throw mapRpcError(fn, { status: response.status, error: response.error });
    return response.data;
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
