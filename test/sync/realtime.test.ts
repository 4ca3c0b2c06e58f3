import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { AuthError, DatabaseClosedError } from '../../src/errors.js';
import { createUserDb } from '../../src/index.js';
import {
  client,
  converged,
  type Device,
  eventually,
  newUser,
  openDevice,
  schema,
} from './helpers/devices.js';

let server: DevServer;
const open: Device[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0, maxRecordBytes: 4096 });
});
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
  server.faults.reset();
});
afterAll(async () => {
  await server?.stop();
});

describe('sync through the dev server', () => {
  it("an edit on A reaches B through Realtime (no safety poll) and B's live query emits it", async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user);
    const b = await openDevice(server, user);
    open.push(a, b);
    // B's channel is joined (its join triggers one pull) before we count B's pulls
    await eventually(() => b.sb.getChannels().some((c) => c.state === 'joined'), 10_000, "B's channel");
    await converged([a, b]);
    const seen: string[][] = [];
    const sub = b.db
      .table('projects')
      .query()
      .observe()
      .subscribe((rows) => seen.push(rows.map((r) => r.title)));
    const pullsBefore = b.rpc.calls.filter((c) => c === 'userdb_pull').length;
    await a.db.table('projects').insert({ id: 'p_1', title: 'From A', status: 'open' });
    await a.engine.flush();
    await eventually(() => seen.some((titles) => titles.includes('From A')), 10_000, "B's live query");
    sub.unsubscribe();
    // the whole record came with the event: B did not need to call userdb_pull
    expect(b.rpc.calls.filter((c) => c === 'userdb_pull').length).toBe(pullsBefore);
    expect(await b.db.table('projects').get('p_1')).toMatchObject({ title: 'From A' });
  });

  it('every resubscription of the Realtime channel pulls (events sent while it was down are lost)', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user);
    const b = await openDevice(server, user);
    open.push(a, b);
    const joined = () => a.sb.getChannels().some((c) => c.state === 'joined');
    await eventually(joined, 10_000, "A's channel");
    await converged([a, b]);
    for (let round = 0; round < 3; round++) {
      const pulls = a.rpc.calls.filter((c) => c === 'userdb_pull').length;
      // the socket goes down; B writes while A cannot hear it (an HTTP write: Realtime is down)
      server.faults.offline(true);
      await eventually(() => !joined(), 10_000, 'channel down');
      server.faults.offline(false);
      await b.db.table('projects').insert({ id: `r_${round}`, title: `while down ${round}`, status: 'open' });
      await b.engine.flush();
      // A rejoins by itself (realtime-js), and that alone must bring a pull: no poll, no other trigger
      await eventually(joined, 10_000, 'channel rejoined');
      await eventually(
        () => a.rpc.calls.filter((c) => c === 'userdb_pull').length > pulls,
        10_000,
        `a pull after resubscription ${round}`,
      );
      await converged([a, b]);
      expect(await a.db.table('projects').get(`r_${round}`)).toMatchObject({ title: `while down ${round}` });
    }
  });

  it('db.close() removes the Realtime channel and releases the leader lock', async () => {
    const user = await newUser(server);
    const tab1 = await openDevice(server, user);
    await eventually(() => tab1.engine.status.leader && tab1.sb.getChannels().length === 1);
    const tab2 = await openDevice(server, user, { indexedDB: tab1.indexedDB });
    open.push(tab2);
    expect(tab2.engine.status.leader).toBe(false);
    await tab1.db.close();
    await eventually(() => tab1.sb.getChannels().length === 0, 5_000, 'the channel removed');
    await eventually(() => tab2.engine.status.leader, 5_000, 'handover');
    await expect(tab1.db.flush()).rejects.toThrow(/closed/);
  });

  it('createUserDb({ supabase }) without userId needs a session; a local-only database has a constant status', async () => {
    const anonymous = client(server);
    await expect(
      createUserDb({ supabase: anonymous, schema, indexedDB: new IDBFactory(), IDBKeyRange }),
    ).rejects.toBeInstanceOf(AuthError);
    // with `userId`, a session of another user no longer rejects: the database opens locally and
    // sync stops with ForbiddenError on status$ (test/sync/offline-start.test.ts)
    const user = await newUser(server);
    const local = await createUserDb({ userId: user.id, schema, indexedDB: new IDBFactory(), IDBKeyRange });
    await local.table('projects').insert({ id: 'p_1', title: 'local', status: 'open' });
    expect(await firstValueFrom(local.status$)).toMatchObject({
      state: 'idle',
      online: false,
      leader: false,
    });
    await expect(local.flush()).resolves.toBeUndefined();
    await expect(local.pull()).resolves.toBeUndefined();
    await local.close();
    await expect(local.flush()).rejects.toBeInstanceOf(DatabaseClosedError);
  });

  it('without delta sync (postgres_changes): a record Realtime cut down for size (errors: 413) makes B call userdb_pull instead', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user, { sync: { delta: false } });
    const b = await openDevice(server, user, { sync: { delta: false } });
    open.push(a, b);
    await converged([a, b]);
    const pullsBefore = b.rpc.calls.filter((c) => c === 'userdb_pull').length;
    await a.db.table('projects').insert({ id: 'big', title: 'x'.repeat(8000), status: 'open' });
    await a.engine.flush();
    await eventually(
      async () => (await b.db.table('projects').get('big')) !== undefined,
      10_000,
      'the big row on B',
    );
    expect(b.rpc.calls.filter((c) => c === 'userdb_pull').length).toBeGreaterThan(pullsBefore);
    await converged([a, b]);
  });
});
