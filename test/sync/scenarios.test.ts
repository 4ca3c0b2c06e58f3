import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, signJwt, startDevServer } from '../../src/devserver/index.js';
import { AuthError, InvalidRemoteDocumentError } from '../../src/errors.js';
import { clearLocal, createUserDb } from '../../src/index.js';
import type { SyncOptions } from '../../src/sync/engine.js';
import {
  converged,
  type Device,
  devicePair,
  eventually,
  newUser,
  openDevice,
  schema,
  serverDoc,
} from './helpers/devices.js';

let server: DevServer;
const open: Device[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
});
afterEach(async () => {
  server.faults.reset();
  for (const d of open.splice(0)) await d.close();
});
afterAll(async () => {
  await server?.stop();
});

function pair(): Promise<[Device, Device]> {
  return devicePair(server, open);
}

function rowsOf(doc: unknown, table = 'projects'): unknown[][] {
  const t = (doc as { tables: Record<string, { rows: unknown[][] }> }).tables[table];
  return [...(t?.rows ?? [])].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
}

describe('offline on both devices, then online', () => {
  it('edits of different rows and of different fields of one row all survive', async () => {
    const [a, b] = await pair();
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    server.faults.offline(true);
    await a.db.table('projects').insert({ id: 'a_1', title: 'from A', status: 'open' });
    await b.db.table('projects').insert({ id: 'b_1', title: 'from B', status: 'open' });
    await a.db.table('projects').update('p_1', { title: 'A title' });
    await b.db.table('projects').update('p_1', { status: 'closed' });
    await eventually(() => a.engine.status.state === 'offline' && b.engine.status.state === 'offline');
    expect(a.engine.status.pendingCount).toBe(2);
    server.faults.offline(false);
    await converged([a, b]);
    expect(rowsOf(await a.db.export())).toEqual([
      ['a_1', 'from A', 'open', null],
      ['b_1', 'from B', 'open', null],
      ['p_1', 'A title', 'closed', null],
    ]);
    expect([...a.conflicts, ...b.conflicts]).toEqual([]);
  });

  it('the same field: both end with the value the server took last; conflicts$ reports the loser', async () => {
    const [a, b] = await pair();
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    server.faults.offline(true);
    await a.db.table('projects').update('p_1', { title: 'A' });
    await b.db.table('projects').update('p_1', { title: 'B' });
    server.faults.offline(false);
    await converged([a, b]);
    const conflicts = [...a.conflicts, ...b.conflicts];
    const changed = conflicts.filter((x) => x.kind === 'field_changed');
    expect(changed).toHaveLength(1);
    const [c] = changed;
    expect(c).toMatchObject({ kind: 'field_changed', table: 'projects', key: 'p_1', field: 'title' });
    const final = (await a.db.table('projects').get('p_1'))?.title;
    expect(final).toBe(c?.local);
    expect(c?.remote).toBe(final === 'A' ? 'B' : 'A');
    expect((await b.db.table('projects').get('p_1'))?.title).toBe(final);
    // The device whose acknowledged write was overridden is told as well, once.
    await eventually(
      () => [...a.conflicts, ...b.conflicts].some((x) => x.kind === 'overridden'),
      10_000,
      'the overridden report',
    );
    expect([...a.conflicts, ...b.conflicts].filter((x) => x.kind !== 'field_changed')).toEqual([
      {
        kind: 'overridden',
        table: 'projects',
        key: 'p_1',
        field: 'title',
        local: c?.remote,
        remote: final,
        resolution: 'dropped',
      },
    ]);
  });

  it('update vs remote delete: the delete wins, the dropped update is reported', async () => {
    const [a, b] = await pair();
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    b.setOffline(true);
    await b.db.table('projects').update('p_1', { title: 'edited on B' });
    await a.db.table('projects').delete('p_1');
    await a.engine.flush();
    b.setOffline(false);
    await converged([a, b]);
    expect(await b.db.table('projects').get('p_1')).toBeUndefined();
    expect(b.conflicts).toEqual([
      expect.objectContaining({ kind: 'row_deleted', table: 'projects', key: 'p_1', resolution: 'dropped' }),
    ]);
  });

  it('a table created on both devices keeps the rows of both', async () => {
    const [a, b] = await pair();
    const notes = {
      fields: [
        { name: 'id', type: 'string' as const },
        { name: 'text', type: 'string' as const },
      ],
      primaryKey: ['id'],
    };
    server.faults.offline(true);
    await a.db.createTable('notes', notes);
    await a.db.untypedTable('notes').insert({ id: 'n_a', text: 'A' });
    await b.db.createTable('notes', notes);
    await b.db.untypedTable('notes').insert({ id: 'n_b', text: 'B' });
    server.faults.offline(false);
    await converged([a, b]);
    expect(rowsOf(await b.db.export(), 'notes')).toEqual([
      ['n_a', 'A'],
      ['n_b', 'B'],
    ]);
  });

  it('a schema change on one device while the other edits rows: rows re-aligned, both kept', async () => {
    const [a, b] = await pair();
    await a.db.createTable('notes', {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'text', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    await a.db.untypedTable('notes').insert({ id: 'n_1', text: 'one' });
    await a.engine.flush();
    await converged([a, b]);
    server.faults.offline(true);
    await a.db.addField('notes', { name: 'pinned', type: 'boolean' });
    await a.db.untypedTable('notes').update('n_1', { pinned: true });
    await b.db.untypedTable('notes').update('n_1', { text: 'one, edited on B' });
    await b.db.untypedTable('notes').insert({ id: 'n_2', text: 'two' });
    server.faults.offline(false);
    await converged([a, b]);
    const doc = (await a.db.export()) as {
      tables: Record<string, { schema: { fields: { name: string }[] } }>;
    };
    expect(doc.tables.notes?.schema.fields.map((f) => f.name)).toEqual(['id', 'text', 'pinned']);
    expect(rowsOf(doc, 'notes')).toEqual([
      ['n_1', 'one, edited on B', true],
      ['n_2', 'two', null],
    ]);
  });
});

describe('onConflict with a table created in the same transaction', () => {
  it("'remote' keeps the server's value although the entry also creates a table", async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user, {
      sync: { onConflict: { projects: (c) => (c.kind === 'field_changed' ? 'remote' : undefined) } },
    });
    const b = await openDevice(server, user);
    open.push(a, b);
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    a.setOffline(true);
    await a.db.transaction(async () => {
      await a.db.createTable('notes', { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] });
      await a.db.table('projects').update('p_1', { title: 'A title' });
    });
    await b.db.table('projects').update('p_1', { title: 'B title' });
    await b.engine.flush();
    a.setOffline(false);
    await a.engine.flush();
    await converged([a, b]);
    const doc = (await serverDoc(b.sb)) as { tables: Record<string, unknown> };
    expect(doc.tables.notes).toBeDefined();
    expect(rowsOf(doc)).toEqual([['p_1', 'B title', 'open', null]]);
    expect(a.conflicts).toMatchObject([{ kind: 'field_changed', key: 'p_1', resolution: 'dropped' }]);
  });
});

describe('delete vs update', () => {
  async function deletedOfflineWhileUpdated(sync: SyncOptions = {}) {
    const user = await newUser(server);
    const a = await openDevice(server, user, { sync });
    const b = await openDevice(server, user);
    open.push(a, b);
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open', n: 1 });
    await a.engine.flush();
    await converged([a, b]);
    a.setOffline(true);
    await a.db.table('projects').delete('p_1');
    await b.db.table('projects').update('p_1', { title: 'Updated on B', n: 2 });
    await b.engine.flush();
    a.setOffline(false);
    await a.engine.flush();
    await converged([a, b]);
    return [a, b] as const;
  }

  it('a row deleted offline on A while B updated it: deleted everywhere, A is told with both values', async () => {
    const [a, b] = await deletedOfflineWhileUpdated();
    expect(rowsOf(await serverDoc(b.sb))).toEqual([]);
    expect(await b.db.table('projects').get('p_1')).toBeUndefined();
    expect(a.conflicts).toEqual([
      {
        kind: 'row_updated',
        table: 'projects',
        key: 'p_1',
        local: { id: 'p_1', title: 'Title', status: 'open', n: 1 },
        remote: { id: 'p_1', title: 'Updated on B', status: 'open', n: 2 },
        resolution: 'applied',
      },
    ]);
    expect(b.conflicts).toEqual([]);
  });

  it("onConflict returning 'remote' keeps the updated row on every device", async () => {
    const seen: unknown[] = [];
    const [a, b] = await deletedOfflineWhileUpdated({
      onConflict: {
        projects: (c) => {
          seen.push(c.kind);
          return c.kind === 'row_updated' ? 'remote' : undefined;
        },
      },
    });
    expect(seen).toEqual(['row_updated']);
    expect(rowsOf(await serverDoc(b.sb))).toEqual([['p_1', 'Updated on B', 'open', 2]]);
    expect(await a.db.table('projects').get('p_1')).toMatchObject({ title: 'Updated on B', n: 2 });
    expect(a.conflicts).toMatchObject([{ kind: 'row_updated', key: 'p_1', resolution: 'dropped' }]);
  });

  it('onConflict returning a value keeps the row with that value', async () => {
    const [a, b] = await deletedOfflineWhileUpdated({
      onConflict: {
        projects: (c) =>
          c.kind === 'row_updated' ? { value: { ...(c.remote as object), status: 'restored' } } : undefined,
      },
    });
    expect(rowsOf(await serverDoc(b.sb))).toEqual([['p_1', 'Updated on B', 'restored', 2]]);
    expect(a.conflicts).toMatchObject([{ kind: 'row_updated', resolution: 'merged' }]);
  });
});

describe('failures', () => {
  it('a response lost after commit: the batch is applied once', async () => {
    const [a, b] = await pair();
    const patches: { seq: unknown; ops: string }[] = [];
    const clientA = a.db.localStore.clientId;
    server.faults.dropResponseAfterCommit((call) => {
      if (call.fn !== 'userdb_patch' || call.args.client_id !== clientA) return false;
      patches.push({ seq: call.args.batch_seq, ops: JSON.stringify(call.args.ops) });
      return patches.length === 1;
    });
    await a.db.table('projects').insert({ id: 'p_once', title: 'once', status: 'open' });
    await eventually(() => patches.length === 1 && a.engine.status.state !== 'pushing', 15_000, 'lost');
    // written after the lost answer: the resend must carry exactly the unanswered batch first
    await a.db.table('projects').insert({ id: 'p_twice', title: 'appended', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    expect(patches.length).toBeGreaterThanOrEqual(3);
    expect(patches[1]).toEqual(patches[0]);
    expect(Number(patches[2]?.seq)).toBeGreaterThan(Number(patches[0]?.seq));
    const rows = rowsOf(await serverDoc(a.sb));
    expect(rows.map((r) => r[0])).toEqual(['p_once', 'p_twice']);
    expect(a.conflicts).toEqual([]);
  });

  it('the dev server restarted in the middle of a flush', async () => {
    const [a, b] = await pair();
    server.faults.latency(200);
    await a.db.table('projects').insert({ id: 'p_1', title: 'during restart', status: 'open' });
    const flushed = a.engine.flush();
    await eventually(() => a.engine.status.state === 'pushing');
    await server.restart();
    server.faults.latency(0);
    await flushed;
    await converged([a, b]);
    expect(rowsOf(await serverDoc(b.sb)).map((r) => r[0])).toEqual(['p_1']);
  });

  it('a token that expired while offline is refreshed on return, and the edits go through', async () => {
    const [a, b] = await pair();
    a.setOffline(true);
    const stored = JSON.parse(a.authStorage.get('userdb-test-auth') as string) as {
      access_token: string;
      expires_at: number;
      user: { id: string };
    };
    const before = stored.access_token;
    const past = Math.floor(Date.now() / 1000) - 60;
    stored.access_token = signJwt(
      { sub: stored.user.id, role: 'authenticated', aud: 'authenticated', exp: past },
      server.jwtSecret,
    );
    stored.expires_at = past;
    a.authStorage.set('userdb-test-auth', JSON.stringify(stored));
    await a.db.table('projects').insert({ id: 'p_offline', title: 'while expired', status: 'open' });
    a.setOffline(false);
    await a.engine.flush();
    await converged([a, b]);
    const now = JSON.parse(a.authStorage.get('userdb-test-auth') as string) as { access_token: string };
    expect(now.access_token).not.toBe(before);
    expect(now.access_token).not.toBe(stored.access_token);
    expect(rowsOf(await serverDoc(b.sb)).map((r) => r[0])).toEqual(['p_offline']);
  });

  it('a token the server rejects as expired (401) is retried as soon as the session is refreshed', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user, { sync: { backoff: { baseMs: 60_000, maxMs: 60_000 } } });
    open.push(a);
    await a.engine.flush();
    await eventually(() => a.engine.status.state === 'idle');
    const stored = JSON.parse(a.authStorage.get('userdb-test-auth') as string) as {
      access_token: string;
      user: { id: string };
    };
    // the client still believes the token is valid (expires_at untouched); the server does not
    const past = Math.floor(Date.now() / 1000) - 60;
    stored.access_token = signJwt(
      { sub: stored.user.id, role: 'authenticated', aud: 'authenticated', exp: past },
      server.jwtSecret,
    );
    a.authStorage.set('userdb-test-auth', JSON.stringify(stored));
    await a.db.table('projects').insert({ id: 'p_1', title: 'needs a fresh token', status: 'open' });
    await eventually(() => a.engine.status.lastError instanceof AuthError);
    expect(a.engine.status).toMatchObject({ state: 'backoff', pendingCount: 1 });
    const { error } = await a.sb.auth.refreshSession();
    expect(error).toBeNull();
    // no waiting for the 60 s backoff: TOKEN_REFRESHED retries at once
    await eventually(() => a.engine.status.pendingCount === 0 && a.engine.status.state === 'idle', 10_000);
    expect(rowsOf(await serverDoc(a.sb)).map((r) => r[0])).toEqual(['p_1']);
  });

  it('10,000 offline edits are flushed in at most 10 round trips', async () => {
    const [a, b] = await pair();
    a.setOffline(true);
    const projects = a.db.table('projects');
    for (let i = 0; i < 10_000; i++) {
      await projects.insert({
        id: `p_${String(i).padStart(5, '0')}`,
        title: `row ${i}`,
        status: 'open',
        n: i,
      });
    }
    await eventually(() => a.engine.status.pendingCount === 10_000);
    const before = a.rpc.calls.length;
    a.setOffline(false);
    await a.engine.flush();
    const patches = a.rpc.calls.slice(before).filter((c) => c === 'userdb_patch').length;
    expect(patches).toBeGreaterThan(0);
    expect(patches).toBeLessThanOrEqual(10);
    await converged([a, b], 60_000);
    expect(rowsOf(await serverDoc(b.sb))).toHaveLength(10_000);
  }, 120_000);

  it('a document made invalid by a foreign client: error on status$, local data and outbox intact, resumes after repair', async () => {
    const [a, b] = await pair();
    await a.db.table('projects').insert({ id: 'p_1', title: 'Title', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    const foreign = b.sb; // any client of the user; it bypasses userdb
    const bad = await foreign.rpc('userdb_set', {
      path: ['tables', 'projects', 'rows'],
      value: [['p_1', 'short row']],
    });
    expect(bad.error).toBeNull();
    await eventually(() => a.engine.status.state === 'error');
    expect(a.engine.status.lastError).toBeInstanceOf(InvalidRemoteDocumentError);
    await a.db.table('projects').insert({ id: 'p_2', title: 'while broken', status: 'open' });
    await eventually(() => a.engine.status.pendingCount === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.engine.status.pendingCount).toBe(1);
    expect(await a.db.table('projects').get('p_1')).toMatchObject({ title: 'Title' });
    const repaired = await foreign.rpc('userdb_set', {
      path: ['tables', 'projects', 'rows'],
      value: [['p_1', 'Repaired', 'open', null]],
    });
    expect(repaired.error).toBeNull();
    await converged([a, b]);
    expect(rowsOf(await serverDoc(b.sb))).toEqual([
      ['p_1', 'Repaired', 'open', null],
      ['p_2', 'while broken', 'open', null],
    ]);
    expect(a.engine.status.lastError).toBeNull();
  });
});

describe('users and tabs on one device', () => {
  it('two users on one device: no data crosses; clearLocal removes everything', async () => {
    const indexedDB = new IDBFactory();
    const u1 = await newUser(server);
    const u2 = await newUser(server);
    const d1 = await openDevice(server, u1, { indexedDB });
    const d2 = await openDevice(server, u2, { indexedDB });
    open.push(d1, d2);
    await d1.db.table('projects').insert({ id: 'u1_row', title: 'user 1', status: 'open' });
    await d2.db.table('projects').insert({ id: 'u2_row', title: 'user 2', status: 'open' });
    await converged([d1]);
    await converged([d2]);
    expect(rowsOf(await serverDoc(d1.sb)).map((r) => r[0])).toEqual(['u1_row']);
    expect(rowsOf(await serverDoc(d2.sb)).map((r) => r[0])).toEqual(['u2_row']);
    expect(rowsOf(await d1.db.export()).map((r) => r[0])).toEqual(['u1_row']);
    await d1.close();
    open.splice(open.indexOf(d1), 1);
    await clearLocal(u1.id, { indexedDB, IDBKeyRange });
    const reopened = await createUserDb({ userId: u1.id, schema, indexedDB, IDBKeyRange });
    expect(await reopened.table('projects').query().toArray()).toEqual([]);
    await reopened.close();
    expect(rowsOf(await d2.db.export()).map((r) => r[0])).toEqual(['u2_row']);
  });

  it('two instances on one IndexedDB: one leader, each sees the other, handover on close', async () => {
    const user = await newUser(server);
    const indexedDB = new IDBFactory();
    const tab1 = await openDevice(server, user, { indexedDB });
    const tab2 = await openDevice(server, user, { indexedDB });
    const other = await openDevice(server, user);
    open.push(tab2, other);
    await eventually(() => tab1.engine.status.leader);
    expect(tab2.engine.status.leader).toBe(false);
    await tab2.db.table('projects').insert({ id: 'from_tab2', title: 'tab 2', status: 'open' });
    await eventually(async () => (await tab1.db.table('projects').get('from_tab2')) !== undefined);
    await tab2.engine.flush();
    await eventually(async () => (await other.db.table('projects').get('from_tab2')) !== undefined);
    await other.db.table('projects').insert({ id: 'from_other', title: 'other', status: 'open' });
    await other.engine.flush();
    await eventually(async () => (await tab2.db.table('projects').get('from_other')) !== undefined);
    expect(tab2.rpc.calls).toEqual([]); // the follower never talked to the server
    await tab1.close();
    await eventually(() => tab2.engine.status.leader);
    await tab2.db.table('projects').insert({ id: 'after_handover', title: 'new leader', status: 'open' });
    await converged([tab2, other]);
    expect(tab2.rpc.calls).toContain('userdb_patch');
  });
});
