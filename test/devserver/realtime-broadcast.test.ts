/**
 * Broadcast from the database and private channels, through the real supabase-js client:
 * rows inserted into realtime.messages (realtime.send) reach the channels of their topic, in
 * Realtime's frames; private joins, token updates and client broadcasts are authorized by the
 * RLS policies of realtime.messages, and a token's role must be one `authenticator` may become.
 */
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type DevServer, signJwt, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client, RawSocket, signedUp, subscribed, waitFor } from './helpers.js';

type User = { sb: SupabaseClient; id: string; token: string };
type Received = { type: string; event: string; payload: Record<string, unknown>; meta?: { id: string } };

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  // The read policy the userdb migration ships (delta-sync contract), and for client
  // broadcasts on `room:*` topics a read and an insert policy.
  await server.db.exec(`
    create policy "test: read own userdb topic" on realtime.messages for select to authenticated
      using (extension = 'broadcast' and realtime.topic() = 'userdb:' || (select auth.uid())::text);
    create policy "test: read rooms" on realtime.messages for select to authenticated
      using (extension = 'broadcast' and realtime.topic() like 'room:%');
    create policy "test: write rooms" on realtime.messages for insert to authenticated
      with check (extension = 'broadcast' and realtime.topic() like 'room:%');
  `);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

const seconds = () => Math.floor(Date.now() / 1000);

/** Another client of the same user (another device), with the user's token for Realtime. */
async function device(user: User): Promise<SupabaseClient> {
  const sb = client(server);
  await sb.realtime.setAuth(user.token);
  return sb;
}

/** A channel of `topic` collecting its broadcasts of event `change`; resolves once joined (or refused). */
function listen(sb: SupabaseClient, topic: string, isPrivate: boolean, event = 'change') {
  const received: Received[] = [];
  const system: Record<string, unknown>[] = [];
  const channel = sb
    .channel(topic, { config: { private: isPrivate } })
    .on('broadcast', { event }, (message) => received.push(message as Received))
    .on('system', {}, (payload: Record<string, unknown>) => system.push(payload));
  const joined = new Promise<{ ok: true } | { ok: false; error: string }>((resolve) => {
    channel.subscribe((status, error) => {
      if (status === 'SUBSCRIBED') resolve({ ok: true });
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')
        resolve({ ok: false, error: error?.message ?? status });
    });
  });
  return { channel, received, system, joined };
}

async function send(topic: string, payload: Record<string, unknown>, isPrivate = true): Promise<void> {
  await server.db.query(`select realtime.send($1::jsonb, 'change', $2, $3)`, [
    JSON.stringify(payload),
    topic,
    isPrivate,
  ]);
}

/** Sends a marker after `before` and waits for `channel` to receive it: what came before has arrived. */
async function flushed(received: Received[], topic: string, isPrivate = true): Promise<void> {
  const marker = `marker-${Math.random()}`;
  await send(topic, { marker }, isPrivate);
  await waitFor(() => received.some((m) => m.payload.marker === marker), 10_000, `marker on ${topic}`);
}

describe('broadcast from the database', () => {
  it('delivers realtime.send to the private channel of its topic only, in order, as Realtime frames it', async () => {
    const a = await signedUp(server);
    const b = await signedUp(server);
    const aTopic = `userdb:${a.id}`;
    const mine = listen(await device(a), aTopic, true);
    const bOwn = listen(b.sb, `userdb:${b.id}`, true);
    const publicSameName = listen(client(server), aTopic, false);
    expect(await Promise.all([mine.joined, bOwn.joined, publicSameName.joined])).toEqual([
      { ok: true },
      { ok: true },
      { ok: true },
    ]);

    await send(aTopic, { before: 't0', after: 't1', ops: [] });
    await waitFor(() => mine.received.length === 1, 10_000, 'first broadcast');
    const first = mine.received[0]!;
    expect(first).toEqual({
      type: 'broadcast',
      event: 'change',
      payload: { before: 't0', after: 't1', ops: [], id: expect.any(String) },
      meta: { id: first.payload.id },
    });

    // Order: one transaction of ten, then ten transactions.
    await server.db.transaction(async (tx) => {
      for (let i = 0; i < 10; i++) {
        await tx.query(`select realtime.send($1::jsonb, 'change', $2, true)`, [
          JSON.stringify({ n: i }),
          aTopic,
        ]);
      }
    });
    for (let i = 10; i < 20; i++) await send(aTopic, { n: i });
    await waitFor(() => mine.received.length === 21, 10_000, 'twenty broadcasts');
    expect(mine.received.slice(1).map((m) => m.payload.n)).toEqual(Array.from({ length: 20 }, (_, i) => i));

    // A public message of the same topic goes to the public channel only.
    await send(aTopic, { visibility: 'public' }, false);
    await waitFor(() => publicSameName.received.length === 1, 10_000, 'public broadcast');
    expect(publicSameName.received[0]!.payload.visibility).toBe('public');

    await flushed(mine.received, aTopic);
    await flushed(bOwn.received, `userdb:${b.id}`);
    expect(mine.received.some((m) => m.payload.visibility === 'public')).toBe(false);
    expect(bOwn.received.filter((m) => m.payload.marker === undefined)).toEqual([]);
    expect(publicSameName.received.length).toBe(1);
  });

  it('never delivers a message sent in a rolled back transaction, nor an insert of another extension', async () => {
    const a = await signedUp(server);
    const topic = `userdb:${a.id}`;
    // A postgres_changes join (re)installs the change capture triggers: broadcasts keep flowing.
    await subscribed(
      a.sb
        .channel('feed')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'user_databases' }, () => undefined),
    );
    const mine = listen(await device(a), topic, true);
    expect(await mine.joined).toEqual({ ok: true });
    await expect(
      server.db.transaction(async (tx) => {
        await tx.query(`select realtime.send('{"rolled": "back"}'::jsonb, 'change', $1, true)`, [topic]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await server.db.query(
      `insert into realtime.messages (topic, extension, event, payload, private) values ($1, 'presence', 'change', '{"presence": 1}', true)`,
      [topic],
    );
    await flushed(mine.received, topic);
    expect(mine.received.map((m) => Object.keys(m.payload).filter((k) => k !== 'id'))).toEqual([['marker']]);
  });

  it('sends the binary user-broadcast frame (kind 4) to vsn 2.0.0 and a JSON broadcast to vsn 1.0.0', async () => {
    const topic = `plain-${Date.now()}`;
    const v2 = new WebSocket(
      `${server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${server.anonKey}&vsn=2.0.0`,
    );
    const v1 = new WebSocket(
      `${server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${server.anonKey}&vsn=1.0.0`,
    );
    const binary: Buffer[] = [];
    const objects: Record<string, unknown>[] = [];
    v2.on('message', (data, isBinary) => {
      if (isBinary) binary.push(data as Buffer);
    });
    v1.on('message', (data) => objects.push(JSON.parse(data.toString()) as Record<string, unknown>));
    await Promise.all([v2, v1].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
    v2.send(JSON.stringify(['1', '1', `realtime:${topic}`, 'phx_join', { config: { private: false } }]));
    v1.send(
      JSON.stringify({ join_ref: '1', ref: '1', topic: `realtime:${topic}`, event: 'phx_join', payload: {} }),
    );
    await waitFor(() => objects.some((o) => o.event === 'phx_reply'), 10_000, 'v1 join');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.db.query(`select realtime.send('{"k": "v", "id": "given"}'::jsonb, 'evt', $1, false)`, [
      topic,
    ]);
    await waitFor(() => binary.length === 1 && objects.some((o) => o.event === 'broadcast'), 10_000, 'both');
    const frame = binary[0]!;
    const fullTopic = `realtime:${topic}`;
    const rows = await server.db.query<{ id: string }>(
      `select id::text as id from realtime.messages where topic = $1 and extension = 'broadcast'`,
      [topic],
    );
    const meta = JSON.stringify({ id: rows[0]!.id });
    expect([...frame.subarray(0, 5)]).toEqual([4, fullTopic.length, 3, meta.length, 1]);
    let offset = 5;
    const take = (n: number) => {
      const text = frame.subarray(offset, offset + n).toString('utf8');
      offset += n;
      return text;
    };
    expect(take(fullTopic.length)).toBe(fullTopic);
    expect(take(3)).toBe('evt');
    expect(take(meta.length)).toBe(meta);
    // A payload that has an id keeps it (realtime.send adds one only when missing).
    expect(JSON.parse(frame.subarray(offset).toString('utf8'))).toEqual({ k: 'v', id: 'given' });
    expect(objects.find((o) => o.event === 'broadcast')).toEqual({
      join_ref: null,
      ref: null,
      topic: fullTopic,
      event: 'broadcast',
      payload: {
        type: 'broadcast',
        event: 'evt',
        payload: { k: 'v', id: 'given' },
        meta: { id: rows[0]!.id },
      },
    });
    v1.close();
    v2.close();
  });
});

describe('private channel authorization', () => {
  it("refuses another user's topic, the anon key, an expired token and a role not granted to authenticator", async () => {
    const a = await signedUp(server);
    const b = await signedUp(server);
    const topic = `userdb:${a.id}`;
    const reason = `Unauthorized: You do not have permissions to read from this Channel topic: ${topic}`;
    const other = listen(b.sb, topic, true);
    const anon = listen(client(server), topic, true);
    const superuser = signJwt({ sub: a.id, role: 'postgres', exp: seconds() + 600 }, server.jwtSecret);
    const asPostgres = listen(await device({ ...a, token: superuser }), topic, true);
    // service_role bypasses RLS (BYPASSRLS, as on Supabase): it may join any topic.
    const serviceRole = listen(client(server, server.serviceRoleKey), topic, true);
    expect(await other.joined).toEqual({ ok: false, error: reason });
    expect(await anon.joined).toEqual({ ok: false, error: reason });
    expect(await asPostgres.joined).toEqual({ ok: false, error: reason });
    expect(await serviceRole.joined).toEqual({ ok: true });

    // An expired token is refused before any policy is read.
    const raw = new RawSocket(server);
    await raw.opened();
    const expired = signJwt({ sub: a.id, role: 'authenticated', exp: seconds() - 10 }, server.jwtSecret);
    const reply = await raw.reply(
      raw.push(`realtime:${topic}`, 'phx_join', { config: { private: true }, access_token: expired }),
    );
    expect(reply).toEqual({
      status: 'error',
      response: { reason: expect.stringMatching(/^InvalidJWTToken: Token has expired \d+ seconds ago$/) },
    });

    const owner = listen(await device(a), topic, true);
    expect(await owner.joined).toEqual({ ok: true });
    await send(topic, { secret: 1 });
    await flushed(owner.received, topic);
    expect(owner.received.map((m) => m.payload.secret ?? 'marker')).toEqual([1, 'marker']);
    for (const spy of [other, anon, asPostgres]) expect(spy.received).toEqual([]);
    expect(raw.frames.filter((f) => f[3] === 'broadcast' || f[0] === 'unparsable')).toEqual([]);
    raw.close();
  });

  it("closes the channel when an access_token update hands it another user's token", async () => {
    const a = await signedUp(server);
    const b = await signedUp(server);
    const topic = `userdb:${a.id}`;
    const sb = await device(a);
    const mine = listen(sb, topic, true);
    expect(await mine.joined).toEqual({ ok: true });
    await send(topic, { n: 1 });
    await waitFor(() => mine.received.length === 1, 10_000, 'first message');

    await sb.realtime.setAuth(b.token);
    await waitFor(() => mine.system.length > 0, 10_000, 'system message');
    expect(mine.system.at(-1)).toMatchObject({
      extension: 'system',
      status: 'error',
      message: `You do not have permissions to read from this Channel topic: ${topic}`,
    });
    // The owner's other device proves messages still flow; the closed channel gets none.
    const witness = listen(await device(a), topic, true);
    expect(await witness.joined).toEqual({ ok: true });
    await send(topic, { n: 2 });
    await flushed(witness.received, topic);
    expect(mine.received.map((m) => m.payload.n)).toEqual([1]);
  });

  it('closes a channel whose access_token update carries a role not granted to authenticator', async () => {
    const a = await signedUp(server);
    const sb = await device(a);
    const channel = listen(sb, `room:${a.id}`, false);
    expect(await channel.joined).toEqual({ ok: true });
    await sb.realtime.setAuth(
      signJwt({ sub: a.id, role: 'postgres', exp: seconds() + 600 }, server.jwtSecret),
    );
    await waitFor(() => channel.system.length > 0, 10_000, 'system message');
    expect(channel.system.at(-1)).toMatchObject({ status: 'error', extension: 'system' });
  });
});

describe('client broadcasts', () => {
  function sender(
    sb: SupabaseClient,
    topic: string,
    config: Record<string, unknown>,
  ): Promise<RealtimeChannel> {
    const channel = sb.channel(topic, { config: config as never });
    return new Promise((resolve, reject) =>
      channel.subscribe((status, error) => {
        if (status === 'SUBSCRIBED') resolve(channel);
        else if (status === 'CHANNEL_ERROR') reject(error);
      }),
    );
  }

  it('relays a public broadcast to the other subscribers, and to the sender with self', async () => {
    const topic = `lobby-${Date.now()}`;
    const receiver = listen(client(server), topic, false, 'hello');
    expect(await receiver.joined).toEqual({ ok: true });
    const own: unknown[] = [];
    const plain = await sender(client(server), topic, { broadcast: { ack: true } });
    const selfish = client(server)
      .channel(topic, { config: { broadcast: { self: true } } })
      .on('broadcast', { event: 'hello' }, (m) => own.push(m.payload));
    await new Promise<void>((resolve) => selfish.subscribe((s) => s === 'SUBSCRIBED' && resolve()));

    expect(await plain.send({ type: 'broadcast', event: 'hello', payload: { from: 'plain' } })).toBe('ok');
    await selfish.send({ type: 'broadcast', event: 'hello', payload: { from: 'selfish' } });
    await waitFor(() => receiver.received.length === 2 && own.length === 2, 10_000, 'relayed broadcasts');
    expect(receiver.received.map((m) => m.payload)).toEqual([{ from: 'plain' }, { from: 'selfish' }]);
    expect(receiver.received[0]).toEqual({ type: 'broadcast', event: 'hello', payload: { from: 'plain' } });
    expect(own).toEqual([{ from: 'plain' }, { from: 'selfish' }]);
  });

  it('relays a private broadcast only with an insert policy; without one it is dropped unanswered', async () => {
    const a = await signedUp(server);
    const room = `room:${a.id}`;
    const roomReceiver = listen(await device(a), room, true, 'msg');
    const userdbReceiver = listen(await device(a), `userdb:${a.id}`, true, 'change');
    expect(await Promise.all([roomReceiver.joined, userdbReceiver.joined])).toEqual([
      { ok: true },
      { ok: true },
    ]);

    const roomSender = await sender(a.sb, room, { private: true, broadcast: { ack: true } });
    expect(await roomSender.send({ type: 'broadcast', event: 'msg', payload: { ok: 1 } })).toBe('ok');
    await waitFor(() => roomReceiver.received.length === 1, 10_000, 'room broadcast');
    expect(roomReceiver.received[0]!.payload).toEqual({ ok: 1 });

    // No insert policy on userdb topics: nobody can forge a change message.
    const forger = await sender(a.sb, `userdb:${a.id}`, { private: true, broadcast: { ack: true } });
    expect(
      await forger.send({ type: 'broadcast', event: 'change', payload: { forged: true } }, { timeout: 500 }),
    ).toBe('timed out');
    await flushed(userdbReceiver.received, `userdb:${a.id}`);
    expect(userdbReceiver.received.map((m) => m.payload.forged)).toEqual([undefined]);
  });
});

describe('the websocket apikey', () => {
  it("accepts only the project's API keys, not a user's access token", async () => {
    const a = await signedUp(server);
    await expect(new RawSocket(server, a.token).opened()).rejects.toThrow('HTTP 403');
    const superuser = signJwt({ role: 'postgres', exp: seconds() + 600 }, server.jwtSecret);
    await expect(new RawSocket(server, superuser).opened()).rejects.toThrow('HTTP 403');
    const ok = new RawSocket(server, server.serviceRoleKey);
    await ok.opened();
    await ok.roundTrip();
    ok.close();
  });
});
