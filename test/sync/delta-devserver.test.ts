/**
 * Delta sync through the dev server with the real supabase-js: the change log of the delta
 * migration, private Broadcast on `userdb:<user id>`, pulls by delta; and a server with only the
 * first migration (the fallback test below).
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { converged, type Device, eventually, newUser, openDevice } from './helpers/devices.js';

let server: DevServer;
const open: Device[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
});
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
  server.faults.reset();
});
afterAll(async () => {
  await server?.stop();
});

async function pair() {
  const user = await newUser(server);
  const a = await openDevice(server, user);
  const b = await openDevice(server, user);
  open.push(a, b);
  await eventually(() => b.sb.getChannels().some((c) => c.state === 'joined'), 10_000, "B's channel");
  const rows = Array.from({ length: 300 }, (_, i) => ({
    id: `p_${i}`,
    title: `Project ${i}`,
    status: 'open',
  }));
  await a.db.transaction(async () => {
    for (const r of rows) await a.db.table('projects').insert(r);
  });
  await a.engine.flush();
  await converged([a, b]);
  return { user, a, b };
}

const pulls = (d: Device) => d.rpc.calls.filter((c) => c === 'userdb_pull').length;

describe('delta sync through the dev server', () => {
  it('a one-field edit on A reaches B by Broadcast: no request, no base rewrite, a small IndexedDB write', async () => {
    const { a, b } = await pair();
    const before = pulls(b);
    const stats = { ...b.db.localStore.writeStats };
    await a.db.table('projects').update('p_7', { title: 'Renamed on A' });
    await a.engine.flush();
    await eventually(async () => (await b.db.table('projects').get('p_7'))?.title === 'Renamed on A');
    expect(pulls(b)).toBe(before);
    const after = b.db.localStore.writeStats;
    expect(after.baseWrites).toBe(stats.baseWrites);
    expect(after.meta + after.log - stats.meta - stats.log).toBeLessThan(4096);
    await converged([a, b]);
  });

  it('a change too large for a Broadcast (ops null) makes B pull it, by delta', async () => {
    const { a, b } = await pair();
    const before = pulls(b);
    const baseWrites = b.db.localStore.writeStats.baseWrites;
    const big = 'x'.repeat(40_000); // over userdb.broadcast_max_bytes() (32 KiB)
    await a.db.table('projects').update('p_9', { title: big });
    await a.engine.flush();
    await eventually(async () => (await b.db.table('projects').get('p_9'))?.title === big);
    expect(pulls(b)).toBeGreaterThan(before);
    await converged([a, b]);
    // the pull answered the chain, not the document: no base rewrite on B
    expect(b.db.localStore.writeStats.baseWrites).toBe(baseWrites);
  });

  it('B offline for many changes catches up in one pull whose answer is smaller than the document', async () => {
    const { user, a, b } = await pair();
    await b.db.close(); // asleep: no channel, no pulls
    open.splice(open.indexOf(b), 1);
    for (let i = 0; i < 20; i++) {
      await a.db.table('projects').update(`p_${i}`, { status: 'done' });
      await a.engine.flush();
    }
    const docBytes = JSON.stringify(await a.db.export()).length;
    const b2 = await openDevice(server, user, { indexedDB: b.indexedDB });
    open.push(b2);
    await converged([a, b2]);
    expect(pulls(b2)).toBeGreaterThanOrEqual(1);
    expect(b2.rpc.received ?? 0).toBeLessThan(docBytes);
  });

  it('Realtime sockets cut mid-stream: the resubscribe pulls by delta and both converge', async () => {
    const { a, b } = await pair();
    for (let i = 0; i < 10; i++) {
      await a.db.table('projects').update(`p_${i}`, { title: `Burst ${i}` });
      if (i === 4) server.faults.closeAllSockets();
    }
    await a.engine.flush();
    await converged([a, b]);
    expect((await b.db.table('projects').get('p_9'))?.title).toBe('Burst 9');
  });

  it('a push whose answer was lost: its own change comes back in the chain and acknowledges the outbox', async () => {
    const { a, b } = await pair();
    // Only the answer of A's next push is lost; then B writes before A retries.
    let lost = false;
    server.faults.dropResponseAfterCommit((c) => {
      if (lost || c.fn !== 'userdb_patch') return false;
      lost = true;
      return true;
    });
    await a.db.table('projects').update('p_3', { title: 'Answer lost' });
    await eventually(() => server.faults.droppedResponses > 0, 10_000, 'a dropped answer');
    await b.db.table('projects').update('p_4', { title: 'Meanwhile on B' });
    await b.engine.flush();
    await a.engine.flush();
    await converged([a, b]);
    expect(a.conflicts).toEqual([]);
    expect((await b.db.table('projects').get('p_3'))?.title).toBe('Answer lost');
    // applied once: the server's document has exactly one p_3 row
    const doc = await a.db.export();
    expect(doc.tables.projects?.rows.filter((r) => r[0] === 'p_3')).toHaveLength(1);
  });

  it('both devices edit the same field: both converge; the winner reports field_changed, the loser overridden', async () => {
    const { a, b } = await pair();
    a.setOffline(true);
    await a.db.table('projects').update('p_1', { title: 'A wins?' });
    await b.db.table('projects').update('p_1', { title: 'B first' });
    await b.engine.flush();
    a.setOffline(false);
    await a.engine.flush();
    await converged([a, b]);
    expect((await b.db.table('projects').get('p_1'))?.title).toBe('A wins?');
    expect(a.conflicts.some((c) => c.kind === 'field_changed' && c.key === 'p_1')).toBe(true);
    // the loser, whose acknowledged write was overwritten, is told too
    await eventually(() => b.conflicts.some((c) => c.kind === 'overridden'), 10_000, "B's conflict");
    expect(b.conflicts).toContainEqual({
      kind: 'overridden',
      table: 'projects',
      key: 'p_1',
      field: 'title',
      local: 'B first',
      remote: 'A wins?',
      resolution: 'dropped',
    });
  });

  it('the loser learns it was overridden after a reload: its acknowledged write was kept in IndexedDB', async () => {
    const { user, a, b } = await pair();
    b.setOffline(true);
    await b.db.table('projects').update('p_2', { title: 'B wins?' });
    await a.db.table('projects').update('p_2', { title: 'A first' });
    await a.engine.flush();
    // A is closed and opened again (a new createUserDb on the same IndexedDB)
    await a.close();
    open.splice(open.indexOf(a), 1);
    const again = await openDevice(server, user, { indexedDB: a.indexedDB });
    open.push(again);
    await eventually(() => again.sb.getChannels().some((c) => c.state === 'joined'), 10_000, "A's channel");
    b.setOffline(false);
    await b.engine.flush();
    await converged([again, b]);
    expect((await again.db.table('projects').get('p_2'))?.title).toBe('B wins?');
    await eventually(() => again.conflicts.some((c) => c.kind === 'overridden'), 10_000, "A's conflict");
    expect(again.conflicts).toEqual([
      {
        kind: 'overridden',
        table: 'projects',
        key: 'p_2',
        field: 'title',
        local: 'A first',
        remote: 'B wins?',
        resolution: 'dropped',
      },
    ]);
  });
});

describe('a server without the delta migration', () => {
  let legacy: DevServer;
  beforeAll(async () => {
    // the first migration only: a project deployed before the change log
    const dir = mkdtempSync(join(tmpdir(), 'userdb-legacy-'));
    copyFileSync(
      new URL('../../supabase/migrations/20261127000000_userdb.sql', import.meta.url),
      join(dir, '20261127000000_userdb.sql'),
    );
    legacy = await startDevServer({ port: 0, migrationsDir: dir });
  });
  afterAll(async () => {
    await legacy?.stop();
  });

  it('falls back to whole documents (PGRST202 remembered) and postgres_changes, and still syncs', async () => {
    const user = await newUser(legacy);
    const a = await openDevice(legacy, user);
    const b = await openDevice(legacy, user);
    open.push(a, b);
    await a.db.table('projects').insert({ id: 'p_1', title: 'Old server', status: 'open' });
    await a.engine.flush();
    await converged([a, b]);
    // the postgres_changes channel (topic userdb:<id>:<n>) replaced the refused private one
    await eventually(
      () =>
        b.sb.getChannels().some((c) => c.state === 'joined' && /^realtime:userdb:[^:]+:\d+$/.test(c.topic)),
      10_000,
      "B's postgres_changes channel",
    );
    expect(b.sb.getChannels().some((c) => c.topic === `realtime:userdb:${user.id}`)).toBe(false);
    const before = b.rpc.calls.length;
    await b.engine.pull();
    await b.engine.pull();
    // a delta pull is tried once per client: later pulls go straight to the one-argument call
    expect(b.rpc.calls.length - before).toBe(2);
    await a.db.table('projects').update('p_1', { title: 'Through postgres_changes' });
    await a.engine.flush();
    await eventually(
      async () => (await b.db.table('projects').get('p_1'))?.title === 'Through postgres_changes',
    );
  });
});
