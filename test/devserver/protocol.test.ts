import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_JWT_SECRET, type DevServer, signJwt, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, RawSocket, signedUp, waitFor } from './helpers.js';

let server: DevServer;
let token: string;
let userId: string;

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  const user = await signedUp(server);
  token = user.token;
  userId = user.id;
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

const binding = (filter?: string) => ({
  event: '*',
  schema: 'public',
  table: 'user_databases',
  ...(filter === undefined ? {} : { filter }),
});

describe('Phoenix protocol (vsn 2.0.0)', () => {
  it('answers heartbeats on topic phoenix', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    const ref = raw.push('phoenix', 'heartbeat', {});
    await raw.reply(ref);
    expect(raw.frames).toEqual([[null, ref, 'phoenix', 'phx_reply', { status: 'ok', response: {} }]]);
    raw.close();
  });

  it('echoes each binding with an integer id, then sends the system message', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    const filter = `user_id=eq.${userId}`;
    const ref = raw.push('realtime:doc', 'phx_join', {
      config: {
        broadcast: { self: false },
        presence: { key: '' },
        postgres_changes: [binding(filter), binding()],
        private: false,
      },
      access_token: token,
    });
    const reply = await raw.reply(ref);
    expect(reply.status).toBe('ok');
    const echoed = reply.response.postgres_changes as Record<string, unknown>[];
    expect(echoed).toEqual([
      { ...binding(filter), id: expect.any(Number) },
      { ...binding(), id: expect.any(Number) },
    ]);
    expect(echoed[0]!.id).not.toBe(echoed[1]!.id);
    const joinFrame = raw.frames.find((f) => f[1] === ref)!;
    expect(joinFrame[0]).toBe(ref);
    await waitFor(() => raw.events('system').length === 1, 10_000, 'system message');
    expect(raw.events('system')[0]).toEqual([
      null,
      null,
      'realtime:doc',
      'system',
      { extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: 'doc' },
    ]);

    const leave = raw.push('realtime:doc', 'phx_leave', {}, ref);
    expect(await raw.reply(leave)).toEqual({ status: 'ok', response: {} });
    await waitFor(() => raw.events('phx_close').length === 1, 10_000, 'phx_close');
    expect(raw.events('phx_close')[0]).toEqual([ref, ref, 'realtime:doc', 'phx_close', {}]);
    raw.close();
  });

  it('reports a malformed filter in a system message and refuses private channels', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    const bad = raw.push('realtime:bad', 'phx_join', {
      config: { postgres_changes: [binding('user_id=like.x')] },
      access_token: token,
    });
    expect((await raw.reply(bad)).status).toBe('ok');
    await waitFor(() => raw.events('system').length === 1, 10_000, 'system error');
    expect(raw.events('system')[0]![4]).toMatchObject({ extension: 'postgres_changes', status: 'error' });
    const priv = raw.push('realtime:priv', 'phx_join', { config: { private: true }, access_token: token });
    expect(await raw.reply(priv)).toMatchObject({ status: 'error' });
    raw.close();
  });

  it('answers unmatched topics with an error', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    expect(await raw.reply(raw.push('realtime:never-joined', 'broadcast', {}))).toEqual({
      status: 'error',
      response: { reason: 'unmatched topic' },
    });
    expect(await raw.reply(raw.push('elsewhere', 'phx_join', {}))).toEqual({
      status: 'error',
      response: { reason: 'unmatched topic' },
    });
    raw.close();
  });

  it('refuses join tokens that are forged, malformed or lack exp, with Realtime wording', async () => {
    const raw = new RawSocket(server);
    await raw.opened();
    const forged = signJwt({ role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 }, 'wrong');
    const noExp = signJwt({ role: 'authenticated' }, server.jwtSecret);
    const reasons = [];
    for (const access_token of [forged, 'not.a.jwt', noExp]) {
      const reply = await raw.reply(
        raw.push(`realtime:t${reasons.length}`, 'phx_join', { config: {}, access_token }),
      );
      expect(reply.status).toBe('error');
      reasons.push(reply.response.reason);
    }
    expect(reasons).toEqual([
      'JwtSignatureError: Failed to validate JWT signature',
      'MalformedJWT: The token provided is not a valid JWT',
      'InvalidJWTToken: Fields `role` and `exp` are required in JWT',
    ]);
    raw.close();
  });

  it('speaks vsn 1.0.0 object frames too', async () => {
    const ws = new WebSocket(
      `${server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${server.anonKey}&vsn=1.0.0`,
    );
    const frames: unknown[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '7' }));
    await waitFor(() => frames.length === 1, 10_000, 'v1 reply');
    expect(frames[0]).toEqual({
      join_ref: null,
      ref: '7',
      topic: 'phoenix',
      event: 'phx_reply',
      payload: { status: 'ok', response: {} },
    });
    ws.close();
  });
});

describe('malformed websocket input', () => {
  it('closes a socket that sends garbage, ignores binary frames, and keeps serving', async () => {
    const garbage = new RawSocket(server);
    await garbage.opened();
    const code = new Promise<number>((resolve) => garbage.ws.once('close', (c) => resolve(c)));
    garbage.ws.send('{"not": "a phoenix frame"');
    expect(await code).toBe(1007);

    const wrongShape = new RawSocket(server);
    await wrongShape.opened();
    const code2 = new Promise<number>((resolve) => wrongShape.ws.once('close', (c) => resolve(c)));
    wrongShape.ws.send(JSON.stringify({ topic: 'phoenix' }));
    expect(await code2).toBe(1007);

    const binary = new RawSocket(server);
    await binary.opened();
    binary.ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 1]));
    await binary.roundTrip();
    expect(binary.closed).toBe(false);
    binary.close();
  });

  it('refuses upgrades without a valid apikey, and other paths', async () => {
    await expect(new RawSocket(server, '').opened()).rejects.toThrow('HTTP 403');
    await expect(new RawSocket(server, signJwt({ role: 'anon' }, 'nope')).opened()).rejects.toThrow(
      'HTTP 403',
    );
    const elsewhere = new WebSocket(`${server.url.replace('http', 'ws')}/elsewhere?apikey=${server.anonKey}`);
    await expect(
      new Promise((resolve, reject) => {
        elsewhere.once('open', resolve);
        elsewhere.once('error', reject);
      }),
    ).rejects.toThrow();
    const ok = new RawSocket(server);
    await ok.opened();
    await ok.roundTrip();
    ok.close();
  });
});

describe('keys', () => {
  it('uses the Supabase CLI local secret by default, so the keys are the well-known local ones', () => {
    expect(server.jwtSecret).toBe(DEFAULT_JWT_SECRET);
    expect(server.anonKey).toBe(
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0',
    );
  });
});
