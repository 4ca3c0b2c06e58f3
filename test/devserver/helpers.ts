import type { WebSocketLikeConstructor } from '@supabase/realtime-js';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import type { DevServer } from '../../src/devserver/index.js';

/** A supabase-js client for the dev server, as an app's Node tests would create it. */
export function client(server: DevServer, key = server.anonKey): SupabaseClient {
  return createClient(server.url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: {
      transport: WebSocket as unknown as WebSocketLikeConstructor,
      reconnectAfterMs: () => 20,
    },
  });
}

let counter = 0;

/** Signs a fresh email user up on a new client; returns the client and the user id. */
export async function signedUp(
  server: DevServer,
): Promise<{ sb: SupabaseClient; id: string; token: string }> {
  const sb = client(server);
  counter += 1;
  const { data, error } = await sb.auth.signUp({
    email: `user${counter}-${process.pid}@example.com`,
    password: 'password-123',
  });
  if (error !== null || data.session === null || data.user === null) throw error ?? new Error('no session');
  return { sb, id: data.user.id, token: data.session.access_token };
}

/** Polls `check` every 5 ms until it returns true (or fails after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Subscribes and resolves once realtime-js reports SUBSCRIBED and the server's
 * `system` message says the change feed is ready (rejects on an error status).
 */
export function subscribed(channel: ReturnType<SupabaseClient['channel']>): Promise<void> {
  return new Promise((resolve, reject) => {
    let joined = false;
    let feedReady = false;
    channel.on('system', {}, (payload: { extension?: string; status?: string; message?: string }) => {
      if (payload.extension !== 'postgres_changes') return;
      if (payload.status === 'ok') {
        feedReady = true;
        if (joined) resolve();
      } else reject(new Error(payload.message));
    });
    channel.subscribe((status, error) => {
      if (status === 'SUBSCRIBED') {
        joined = true;
        if (feedReady) resolve();
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(error ?? new Error(status));
    });
  });
}

/** A raw Phoenix vsn 2.0.0 client for protocol-level tests. */
export class RawSocket {
  readonly frames: unknown[][] = [];
  readonly ws: WebSocket;
  closed = false;
  #ref = 0;

  constructor(server: DevServer, apikey = server.anonKey, vsn = '2.0.0') {
    this.ws = new WebSocket(
      `${server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${apikey}&vsn=${vsn}`,
    );
    this.ws.on('message', (data) => {
      try {
        this.frames.push(JSON.parse(data.toString()) as unknown[]);
      } catch {
        this.frames.push(['unparsable', data.toString()]);
      }
    });
    this.ws.on('close', () => {
      this.closed = true;
    });
    this.ws.on('error', () => {
      this.closed = true;
    });
  }

  opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** Sends a frame and returns its ref. */
  push(topic: string, event: string, payload: unknown, joinRef: string | null = null): string {
    this.#ref += 1;
    const ref = String(this.#ref);
    this.ws.send(
      JSON.stringify([joinRef ?? (event === 'phx_join' ? ref : null), ref, topic, event, payload]),
    );
    return ref;
  }

  /** Waits for the reply to `ref`. */
  async reply(ref: string): Promise<{ status: string; response: Record<string, unknown> }> {
    await waitFor(
      () => this.frames.some((f) => f[1] === ref && f[3] === 'phx_reply'),
      10_000,
      `reply ${ref}`,
    );
    const frame = this.frames.find((f) => f[1] === ref && f[3] === 'phx_reply');
    return frame?.[4] as { status: string; response: Record<string, unknown> };
  }

  /** A heartbeat round trip: every frame the server sent before it has arrived once this resolves. */
  async roundTrip(): Promise<void> {
    await this.reply(this.push('phoenix', 'heartbeat', {}));
  }

  events(event: string): unknown[][] {
    return this.frames.filter((f) => f[3] === event);
  }

  close(): void {
    this.ws.close();
  }
}

/** Time allowed to boot a dev server in a hook: PGlite takes seconds, more on a loaded CI machine. */
export const BOOT_TIMEOUT_MS = 180_000;
