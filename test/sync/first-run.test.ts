/**
 * A user's first run on a device, through the public API against the dev server: opening the
 * database writes the declared tables it does not have yet, which is not an edit of the user's, so
 * `status$` never counts it as pending; a pull (not only a push) advances `lastSyncedAt`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { type Device, eventually, newUser, openDevice, serverDoc } from './helpers/devices.js';

let server: DevServer;
const open: Device[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
});
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});
afterAll(async () => {
  await server?.stop();
});

const synced = (d: Device) => () =>
  d.engine.status.leader && d.engine.status.state === 'idle' && d.engine.status.lastSyncedAt !== null;

describe('first run on a device', () => {
  it('a second device of an existing user never shows a pending write without an edit', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user);
    open.push(a);
    await a.db.table('projects').insert({ id: 'p_1', title: 'First', status: 'open' });
    await a.db.flush();

    const b = await openDevice(server, user);
    open.push(b);
    await eventually(synced(b), 15_000, 'B synced');
    expect(await b.db.table('projects').get('p_1')).toMatchObject({ title: 'First' });
    await b.db.flush(); // the table setup is pushed (or found on the server) like any entry
    await eventually(synced(b));
    expect(b.statuses.map((s) => s.pendingCount).filter((n) => n > 0)).toEqual([]);

    // an edit on B is counted as usual
    b.setOffline(true);
    await b.db.table('projects').update('p_1', { title: 'Renamed on B' });
    await eventually(() => b.engine.status.pendingCount === 1, 5_000, 'one pending on B');
    b.setOffline(false);
    await b.db.flush();
    await eventually(() => b.engine.status.pendingCount === 0, 5_000, 'nothing pending on B');
  });

  it('a new device offline counts only its edits, and still creates the tables on the server', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user);
    open.push(a);
    a.setOffline(true);
    await a.db.table('projects').insert({ id: 'p_off', title: 'Offline', status: 'open' });
    await eventually(() => a.engine.status.pendingCount === 1, 5_000, 'one pending');
    a.setOffline(false);
    await a.db.flush();
    await eventually(() => a.engine.status.pendingCount === 0 && a.engine.status.state === 'idle');
    const doc = (await serverDoc(a.sb)) as { tables: Record<string, { rows: unknown[][] }> };
    expect(Object.keys(doc.tables)).toEqual(['projects']);
    expect(doc.tables.projects?.rows.map((r) => r[0])).toEqual(['p_off']);
  });

  it('a pull advances lastSyncedAt', async () => {
    const user = await newUser(server);
    const a = await openDevice(server, user);
    const b = await openDevice(server, user);
    open.push(a, b);
    await eventually(synced(a));
    await eventually(synced(b));
    const before = b.engine.status.lastSyncedAt ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await a.db.table('projects').insert({ id: 'p_a', title: 'From A', status: 'open' });
    await a.db.flush();
    await eventually(async () => (await b.db.table('projects').get('p_a')) !== undefined, 10_000, 'B pulled');
    await eventually(() => (b.engine.status.lastSyncedAt ?? 0) > before, 5_000, "B's lastSyncedAt advanced");
  });
});
