/**
 * Permanent errors on one outbox entry, from the real dev server: the entry (and the later entries
 * on the same rows) is held, listed, repairable and discardable; everything else keeps syncing.
 */
import { IDBKeyRange } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BadPatchError, PayloadTooLargeError } from '../../src/errors.js';
import { createUserDb, type HeldEntry } from '../../src/index.js';
import {
  converged,
  type Device,
  devicePair,
  eventually,
  fastSync,
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
  await server.db.query(
    'create or replace function userdb.max_bytes() returns bigint language sql immutable as $$ select 10485760::bigint $$',
  );
  for (const d of open.splice(0)) await d.close();
});
afterAll(async () => {
  await server?.stop();
});

function pair(): Promise<[Device, Device]> {
  return devicePair(server, open, { firstRow: true });
}

/** The server's size limit, lowered so that one large row is over it (a real PT413). */
async function limitDocumentsTo(bytes: number): Promise<void> {
  await server.db.query(
    `create or replace function userdb.max_bytes() returns bigint language sql immutable as $$ select ${bytes}::bigint $$`,
  );
}

function ids(doc: unknown): string[] {
  const t = (doc as { tables: Record<string, { rows: unknown[][] }> }).tables.projects;
  return (t?.rows ?? []).map((r) => String(r[0])).sort();
}

async function held(d: Device, count: number): Promise<HeldEntry[]> {
  let list: HeldEntry[] = [];
  await eventually(
    async () => {
      list = await d.db.heldEntries();
      return list.length === count;
    },
    15_000,
    `${count} held entries`,
  );
  return list;
}

describe('an entry the server refuses for good', () => {
  it('PT413: is held with its dependents, listed with the error; later writes keep syncing', async () => {
    const [a, b] = await pair();
    await limitDocumentsTo(8_000);
    const lists: (readonly HeldEntry[])[] = [];
    a.db.held$.subscribe((h) => lists.push(h));
    a.setOffline(true); // both writes are in the outbox when the server refuses the first
    await a.db.table('projects').insert({ id: 'p_big', title: 'x'.repeat(20_000), status: 'open' });
    await a.db.table('projects').update('p_big', { status: 'closed' }); // same row: waits for it
    a.setOffline(false);
    await expect(a.db.flush()).rejects.toBeInstanceOf(PayloadTooLargeError);
    await a.db.table('projects').insert({ id: 'p_2', title: 'Second', status: 'open' }); // independent
    await a.db.table('projects').update('p_1', { title: 'First, edited' }); // independent
    await a.db.flush();
    await converged([a, b]);
    expect(ids(await serverDoc(b.sb))).toEqual(['p_1', 'p_2']);
    expect(await b.db.table('projects').get('p_1')).toMatchObject({ title: 'First, edited' });

    const [root, dependent] = await held(a, 2);
    expect(root?.error).toBeInstanceOf(PayloadTooLargeError);
    expect(root?.waitsFor).toBeUndefined();
    expect(root?.ops).toEqual([
      {
        op: 'add',
        path: '/tables/projects/rows/p_big',
        value: { id: 'p_big', title: 'x'.repeat(20_000), status: 'open', n: null },
      },
    ]);
    expect(dependent?.waitsFor).toBe(root?.seq);
    expect(dependent?.error).toBeInstanceOf(PayloadTooLargeError);
    // the held writes are out of the local view (it equals the server: converged above)
    expect(await a.db.table('projects').get('p_big')).toBeUndefined();
    await eventually(() => lists.at(-1)?.length === 2, 5_000, 'held$');
    expect(a.engine.status).toMatchObject({ state: 'idle', pendingCount: 0 });

    // kept across a restart (another instance on the same IndexedDB)
    await a.close();
    open.splice(open.indexOf(a), 1);
    const reopened = await createUserDb({
      supabase: a.sb,
      schema,
      indexedDB: a.indexedDB,
      IDBKeyRange,
      sync: fastSync,
    });
    try {
      expect((await reopened.heldEntries()).map((h) => h.id)).toEqual([root?.id, dependent?.id]);
    } finally {
      await reopened.close();
    }
  });

  it('repair: retryHeld with smaller values syncs them, in order; discardHeld removes an entry', async () => {
    const [a, b] = await pair();
    await limitDocumentsTo(8_000);
    a.setOffline(true);
    await a.db.table('projects').insert({ id: 'p_big', title: 'x'.repeat(20_000), status: 'open' });
    await a.db.table('projects').update('p_big', { status: 'closed' });
    await a.db.table('projects').insert({ id: 'p_gone', title: 'y'.repeat(20_000), status: 'open' });
    a.setOffline(false);
    await a.db.flush().catch(() => undefined);
    const [root, dependent, other] = await held(a, 3);
    expect(other?.waitsFor).toBeUndefined(); // another row: held for its own size
    // a repaired version of the root, then its dependent as it was
    const repaired = (root?.ops ?? []).map((op) =>
      op.op === 'add' ? { ...op, value: { id: 'p_big', title: 'short now', status: 'open', n: null } } : op,
    );
    await a.db.retryHeld(root?.id as number, repaired);
    await a.db.retryHeld(dependent?.id as number);
    await a.db.discardHeld(other?.id as number);
    await a.db.flush();
    await converged([a, b]);
    expect(await b.db.table('projects').get('p_big')).toMatchObject({ title: 'short now', status: 'closed' });
    expect(ids(await serverDoc(b.sb))).toEqual(['p_1', 'p_big']);
    expect(await a.db.heldEntries()).toEqual([]);
  });

  it('a repair that is still invalid is refused with a typed error and stays held', async () => {
    const [a] = await pair();
    await limitDocumentsTo(8_000);
    await a.db.table('projects').insert({ id: 'p_big', title: 'x'.repeat(20_000), status: 'open' });
    await a.db.flush().catch(() => undefined);
    const [root] = await held(a, 1);
    const bad = [
      { op: 'add' as const, path: '/tables/projects/rows/p_big', value: { id: 'p_big', title: 1 } },
    ];
    await expect(a.db.retryHeld(root?.id as number, bad)).rejects.toMatchObject({ code: 'validation' });
    expect((await a.db.heldEntries()).map((h) => h.id)).toEqual([root?.id]);
  });

  it('22P05 (U+0000 written by an older client into the outbox): held; the user is not stuck', async () => {
    const [a, b] = await pair();
    // bypasses today's write-time check, as an outbox written by an older version would
    await a.db.localStore.append([
      { op: 'test', path: '/tables/projects/rows/p_1/title', value: 'First' },
      { op: 'replace', path: '/tables/projects/rows/p_1/title', value: 'nul\u0000' },
    ]);
    await a.db.flush().catch(() => undefined);
    const [root] = await held(a, 1);
    expect(root?.error).toBeInstanceOf(BadPatchError);
    expect(root?.error.message).toMatch(/22P05|unicode|\\u0000/i);
    // later edits of the same row, its deletion, and other rows all sync
    await a.db.table('projects').update('p_1', { title: 'Fixed' });
    await a.db.table('projects').insert({ id: 'p_2', title: 'Second', status: 'open' });
    await a.db.flush();
    await converged([a, b]);
    expect(await b.db.table('projects').get('p_1')).toMatchObject({ title: 'Fixed' });
    await a.db.table('projects').delete('p_1');
    await a.db.flush();
    await converged([a, b]);
    expect(ids(await serverDoc(b.sb))).toEqual(['p_2']);
  });
});
