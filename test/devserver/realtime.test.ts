import type { RealtimePostgresChangesPayload, SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, signJwt, startDevServer } from '../../src/devserver/index.js';
import { matchesFilter, parseFilter } from '../../src/devserver/realtime/filter.js';
import { BOOT_TIMEOUT_MS, client, RawSocket, signedUp, subscribed, waitFor } from './helpers.js';

type Change = RealtimePostgresChangesPayload<Record<string, unknown>>;
type User = { sb: SupabaseClient; id: string; token: string };

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ port: 0, maxRecordBytes: 4096 });
  await server.db.exec(`
    create table public.notes (id int primary key, owner uuid not null, body text);
    alter table public.notes enable row level security;
    create policy "own notes" on public.notes for select using ((select auth.uid()) = owner);
    alter publication supabase_realtime add table public.notes;
  `);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

/** A second signed-in client of the same user (another device). */
async function secondDevice(user: User): Promise<SupabaseClient> {
  const sb = client(server);
  const { data } = await user.sb.auth.getSession();
  await sb.auth.setSession({
    access_token: data.session!.access_token,
    refresh_token: data.session!.refresh_token,
  });
  return sb;
}

function listen(sb: SupabaseClient, name: string, filter?: string) {
  const events: Change[] = [];
  const channel = sb
    .channel(name)
    .on(
      'postgres_changes',
      { event: '*', schema: 'public', table: 'user_databases', ...(filter === undefined ? {} : { filter }) },
      (payload) => events.push(payload as Change),
    );
  return { events, channel, ready: subscribed(channel) };
}

async function touch(user: User, value: unknown): Promise<string> {
  const { data, error } = await user.sb.rpc('userdb_set', {
    path: ['tables', 't'],
    value: { schema: { fields: [], primaryKey: [] }, rows: [], v: value },
  });
  if (error !== null) throw new Error(error.message);
  return data as string;
}

describe('postgres_changes delivery', () => {
  it("delivers A's change to A's other client, shaped as Realtime sends it, and never to B", async () => {
    const a = await signedUp(server);
    const b = await signedUp(server);
    await a.sb.rpc('userdb_init');
    await b.sb.rpc('userdb_init');
    const aOther = listen(await secondDevice(a), 'a-other', `user_id=eq.${a.id}`);
    const bAll = listen(b.sb, 'b-all');
    const bSpy = listen(await secondDevice(b), 'b-spy', `user_id=eq.${a.id}`);
    await Promise.all([aOther.ready, bAll.ready, bSpy.ready]);

    const updatedAt = await touch(a, 1);
    await waitFor(() => aOther.events.length === 1, 10_000, "A's event");
    const event = aOther.events[0]!;
    expect(event).toMatchObject({
      schema: 'public',
      table: 'user_databases',
      eventType: 'UPDATE',
      errors: null,
      old: { user_id: a.id },
    });
    expect(event.commit_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const record = event.new as { user_id: string; updated_at: string; db: { tables: { t: { v: number } } } };
    expect(record.user_id).toBe(a.id);
    expect(record.db.tables.t.v).toBe(1);
    expect(record.updated_at).toBe(updatedAt);
    expect(Object.keys(event.old)).toEqual(['user_id']);

    // B's own change is a sentinel: changes are fanned out in commit order, so once B has
    // its own, A's earlier change would have arrived too if it had been sent.
    await touch(b, 2);
    await waitFor(() => bAll.events.length === 1, 10_000, "B's own event");
    expect((bAll.events[0]!.new as { user_id: string }).user_id).toBe(b.id);
    expect(bSpy.events).toEqual([]);
  });

  it('captures writes from any connection, and DELETE carries only the primary key', async () => {
    const a = await signedUp(server);
    const notes: Change[] = [];
    const channel = a.sb
      .channel('notes')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'notes' }, (p) =>
        notes.push(p as Change),
      );
    await subscribed(channel);
    // Like Realtime, visibility is checked against the row as it is when the change is
    // fanned out, so each write waits for its event before the next one.
    await server.db.query(
      "insert into public.notes values (1, $1, 'hello'), (2, gen_random_uuid(), 'hidden')",
      [a.id],
    );
    await waitFor(() => notes.length === 1, 10_000, 'insert event');
    await server.db.query("update public.notes set body = 'edited' where id = 1");
    await waitFor(() => notes.length === 2, 10_000, 'update event');
    await server.db.query('delete from public.notes where id = 1');
    await waitFor(() => notes.length === 3, 10_000, 'delete event');
    expect(notes.map((n) => n.eventType)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    expect(notes[0]).toMatchObject({ new: { id: 1, owner: a.id, body: 'hello' }, old: {} });
    expect(notes[1]).toMatchObject({ new: { id: 1, body: 'edited' }, old: { id: 1 } });
    expect(notes[2]).toMatchObject({ new: {}, old: { id: 1 } });
    expect(Object.keys(notes[2]!.old)).toEqual(['id']);
  });

  it('cuts a record over the size limit down as Realtime does', async () => {
    const a = await signedUp(server);
    const notes: Change[] = [];
    await subscribed(
      a.sb
        .channel('big')
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) =>
          notes.push(p as Change),
        ),
    );
    await server.db.query("insert into public.notes values (10, $1, repeat('x', 10000))", [a.id]);
    await waitFor(() => notes.length === 1, 10_000, 'big insert');
    expect(notes[0]!.errors).toEqual(['Error 413: Payload Too Large']);
    expect(notes[0]!.new).toEqual({ id: 10, owner: a.id });
  });

  it('filters with eq, neq, lt, lte, gt, gte and in, typed by column, comma-combined', () => {
    const columns = [
      { name: 'n', type: 'int4' },
      { name: 'u', type: 'uuid' },
      { name: 's', type: 'text' },
    ];
    const row = { n: 10, u: 'ABCDEF00-0000-0000-0000-000000000000', s: 'b' };
    const check = (f: string) => {
      const parsed = parseFilter(f);
      if (!parsed.ok) throw new Error(parsed.message);
      return matchesFilter(parsed.filters, row, columns);
    };
    expect(check('n=eq.10')).toBe(true);
    expect(check('n=neq.10')).toBe(false);
    expect(check('n=lt.9')).toBe(false);
    expect(check('n=lt.11')).toBe(true);
    expect(check('n=lte.10')).toBe(true);
    expect(check('n=gt.9')).toBe(true);
    expect(check('n=gte.11')).toBe(false);
    expect(check('n=in.(1,10,100)')).toBe(true);
    expect(check('s=in.(a,c)')).toBe(false);
    expect(check('u=eq.abcdef00-0000-0000-0000-000000000000')).toBe(true);
    expect(check('missing=eq.1')).toBe(false);
    expect(check('n=gt.0,n=lt.100')).toBe(true);
    expect(check('n=gt.0,s=in.(a,c)')).toBe(false);
    // Only the record's own columns: names of Object.prototype match nothing.
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(check(`${name}=eq.x`)).toBe(false);
      expect(check(`${name}=neq.x`)).toBe(false);
    }
    expect(parseFilter('n=like.1').ok).toBe(false);
    expect(parseFilter('nonsense').ok).toBe(false);
  });
});

describe('tokens', () => {
  it('refuses a join with an expired token and sends it nothing', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    const expired = signJwt(
      { sub: a.id, role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 10 },
      server.jwtSecret,
    );

    const stale = client(server);
    stale.realtime.setAuth(expired);
    const status = await new Promise<{ status: string; error: Error | undefined }>((resolve) => {
      stale
        .channel('stale')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'user_databases' }, () => undefined)
        .subscribe((s, error) => {
          if (s !== 'SUBSCRIBED') resolve({ status: s, error });
        });
    });
    expect(status.status).toBe('CHANNEL_ERROR');
    expect(status.error?.message).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/);
    await stale.removeAllChannels();

    const raw = new RawSocket(server);
    await raw.opened();
    const join = raw.push('realtime:raw', 'phx_join', {
      config: { postgres_changes: [{ event: '*', schema: 'public', table: 'user_databases' }] },
      access_token: expired,
    });
    expect(await raw.reply(join)).toEqual({
      status: 'error',
      response: { reason: expect.stringMatching(/Token has expired/) },
    });
    const watcher = listen(await secondDevice(a), 'watcher', `user_id=eq.${a.id}`);
    await watcher.ready;
    await touch(a, 'x');
    await waitFor(() => watcher.events.length === 1, 10_000, 'watcher event');
    await raw.roundTrip();
    expect(raw.events('postgres_changes')).toEqual([]);
    raw.close();
  });

  it('closes a channel whose token expires, and accepts a refreshed access_token', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    const soon = signJwt(
      { sub: a.id, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 2 },
      server.jwtSecret,
    );
    const raw = new RawSocket(server);
    await raw.opened();
    const join = raw.push('realtime:short', 'phx_join', {
      config: {
        postgres_changes: [
          { event: '*', schema: 'public', table: 'user_databases', filter: `user_id=eq.${a.id}` },
        ],
      },
      access_token: soon,
    });
    expect((await raw.reply(join)).status).toBe('ok');
    await waitFor(() => raw.events('phx_close').length === 1, 5_000, 'phx_close on expiry');
    expect(raw.events('system').at(-1)?.[4]).toMatchObject({
      status: 'error',
      extension: 'system',
      message: expect.stringMatching(/^Token has expired/),
    });

    const join2 = raw.push('realtime:long', 'phx_join', {
      config: {
        postgres_changes: [
          { event: '*', schema: 'public', table: 'user_databases', filter: `user_id=eq.${a.id}` },
        ],
      },
      access_token: soon,
    });
    expect((await raw.reply(join2)).status).toBe('error');
    const join3 = raw.push('realtime:long', 'phx_join', {
      config: {
        postgres_changes: [
          { event: '*', schema: 'public', table: 'user_databases', filter: `user_id=eq.${a.id}` },
        ],
      },
      access_token: a.token,
    });
    expect((await raw.reply(join3)).status).toBe('ok');
    await waitFor(
      () =>
        raw
          .events('system')
          .some((f) => f[2] === 'realtime:long' && (f[4] as { status: string }).status === 'ok'),
      5_000,
      'feed ready',
    );
    // A refreshed token replaces the old one and delivery goes on.
    const refreshed = signJwt(
      { sub: a.id, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 600, refreshed: true },
      server.jwtSecret,
    );
    raw.push('realtime:long', 'access_token', { access_token: refreshed }, join3);
    await raw.roundTrip();
    await touch(a, 'after refresh');
    await waitFor(() => raw.events('postgres_changes').length === 1, 10_000, 'event after access_token');
    raw.push('realtime:long', 'access_token', { access_token: 'garbage' }, join3);
    await waitFor(() => raw.events('phx_close').length === 2, 5_000, 'phx_close on a bad access_token');
    raw.close();
  });
});

describe('reconnect', () => {
  it('resumes delivery after closeAllSockets', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    const other = await secondDevice(a);
    const statuses: string[] = [];
    const events: Change[] = [];
    const channel = other
      .channel('resume')
      .on(
        'postgres_changes',
        { event: 'UPDATE', schema: 'public', table: 'user_databases', filter: `user_id=eq.${a.id}` },
        (p) => events.push(p as Change),
      );
    channel.subscribe((s) => statuses.push(s));
    await waitFor(() => statuses.includes('SUBSCRIBED'), 10_000, 'first subscribe');
    await touch(a, 1);
    await waitFor(() => events.length === 1, 10_000, 'first event');

    server.faults.closeAllSockets();
    await waitFor(() => statuses.filter((s) => s === 'SUBSCRIBED').length === 2, 10_000, 'resubscribe');
    await touch(a, 2);
    await waitFor(() => events.length === 2, 10_000, 'event after reconnect');
    expect((events[1]!.new as { db: { tables: { t: { v: number } } } }).db.tables.t.v).toBe(2);
  });
});

describe('privileges and roles', () => {
  beforeAll(async () => {
    await server.db.exec(`
      create table public.accounts (id int primary key, user_id uuid not null, secret text);
      alter table public.accounts replica identity full;
      alter table public.accounts enable row level security;
      create policy "own account" on public.accounts for select using ((select auth.uid()) = user_id);
      revoke all on public.accounts from anon, authenticated;
      grant select (id, user_id) on public.accounts to authenticated;
      create table public.bulletin (id int primary key, body text);
      alter publication supabase_realtime add table public.accounts, public.bulletin;
    `);
  });

  it('sends no change of a table, DELETE included, to a role without privilege on it; only selectable columns', async () => {
    const a = await signedUp(server);
    const events: Change[] = [];
    const anonEvents: Change[] = [];
    await subscribed(
      a.sb
        .channel('accounts-owner')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'accounts' }, (p) =>
          events.push(p as Change),
        ),
    );
    await subscribed(
      client(server)
        .channel('accounts-anon')
        .on('postgres_changes', { event: '*', schema: 'public', table: '*' }, (p) => {
          if (p.table === 'accounts' || p.table === 'bulletin') anonEvents.push(p as Change);
        }),
    );
    await server.db.query(`insert into public.accounts values (1, $1, 'pin 1234')`, [a.id]);
    await waitFor(() => events.length === 1, 10_000, 'insert');
    await server.db.query('delete from public.accounts where id = 1');
    await waitFor(() => events.length === 2, 10_000, 'delete');
    // The owner sees the columns it may select, and of a DELETE on a table with RLS only the key.
    expect(events[0]).toMatchObject({ eventType: 'INSERT', new: { id: 1, user_id: a.id } });
    expect(Object.keys(events[0]!.new)).toEqual(['id', 'user_id']);
    expect(events[1]).toMatchObject({ eventType: 'DELETE', old: { id: 1 } });
    expect(Object.keys(events[1]!.old)).toEqual(['id']);
    // anon has no privilege on accounts: nothing, not even the DELETE. The bulletin insert
    // comes after in commit order, so once it is there the others would have been too.
    await server.db.query(`insert into public.bulletin values (1, 'hello')`);
    await waitFor(() => anonEvents.length >= 1, 10_000, 'bulletin');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(anonEvents.map((e) => `${e.table} ${e.eventType}`)).toEqual(['bulletin INSERT']);
  });

  it('never matches a filter on an Object.prototype name', async () => {
    const a = await signedUp(server);
    const tricked: Change[] = [];
    const control: Change[] = [];
    await subscribed(
      client(server)
        .channel('proto')
        .on(
          'postgres_changes',
          { event: '*', schema: 'public', table: 'bulletin', filter: 'constructor=eq.x' },
          (p) => tricked.push(p as Change),
        )
        .on(
          'postgres_changes',
          { event: '*', schema: 'public', table: 'bulletin', filter: 'toString=neq.x' },
          (p) => tricked.push(p as Change),
        ),
    );
    await subscribed(
      a.sb
        .channel('proto-control')
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'bulletin' }, (p) =>
          control.push(p as Change),
        ),
    );
    await server.db.query(`insert into public.bulletin values (2, 'x')`);
    await waitFor(() => control.length === 1, 10_000, 'control event');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tricked).toEqual([]);
  });

  it('refuses a token whose role is not granted to authenticator, on join and on access_token update', async () => {
    const a = await signedUp(server);
    await a.sb.rpc('userdb_init');
    const superuser = signJwt(
      { sub: a.id, role: 'postgres', exp: Math.floor(Date.now() / 1000) + 600 },
      server.jwtSecret,
    );
    // The RPC routes answer 403 for that token...
    const rpc = client(server);
    await rpc.realtime.setAuth(superuser);
    const viaRpc = await fetch(`${server.url}/rest/v1/rpc/userdb_init`, {
      method: 'POST',
      headers: {
        apikey: server.anonKey,
        authorization: `Bearer ${superuser}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(viaRpc.status).toBe(403);
    // ...and Realtime refuses to join with it.
    const error = await new Promise<string>((resolve) => {
      rpc
        .channel('as-postgres')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'user_databases' }, () => undefined)
        .subscribe((status, e) => {
          if (status !== 'SUBSCRIBED') resolve(e?.message ?? status);
        });
    });
    expect(error).toBe(
      'Unauthorized: You do not have permissions to read from this Channel topic: as-postgres',
    );
    await rpc.removeAllChannels();

    // A joined channel whose token is updated to such a role is closed and gets nothing more.
    const device = await secondDevice(a);
    const events: Change[] = [];
    const system: { status?: string; message?: string }[] = [];
    const channel = device
      .channel('downgrade')
      .on('system', {}, (p: { status?: string; message?: string }) => system.push(p))
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'user_databases' }, (p) =>
        events.push(p as Change),
      );
    await subscribed(channel);
    await touch(a, 'before');
    await waitFor(() => events.length === 1, 10_000, 'event before the update');
    await device.realtime.setAuth(superuser);
    await waitFor(() => system.some((m) => m.status === 'error'), 10_000, 'channel closed');
    expect(system.find((m) => m.status === 'error')?.message).toBe(
      'You do not have permissions to read from this Channel topic: downgrade',
    );
    const witness = listen(await secondDevice(a), 'witness', `user_id=eq.${a.id}`);
    await witness.ready;
    await touch(a, 'after');
    await waitFor(() => witness.events.length === 1, 10_000, 'witness event');
    expect(events.length).toBe(1);
  });
});
