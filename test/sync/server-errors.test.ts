/**
 * Server errors produced by the real dev server (its SQL, not hand-built objects) through the whole
 * engine: a 5xx is retried until it passes, a 22023 holds the entry at fault and the rest syncs.
 * (A real PT413, single entry and halved batch, is in held.test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BadPatchError, ServerError } from '../../src/errors.js';
import { converged, type Device, devicePair, eventually, serverDoc } from './helpers/devices.js';

let server: DevServer;
const open: Device[] = [];

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  // a switch for a server-side failure of every write to the document (SQLSTATE 53000 → HTTP 503)
  await server.db.query('create table if not exists public.test_fail_writes (on_ boolean not null)');
  await server.db.query(`
    create or replace function public.test_fail_writes() returns trigger
    language plpgsql security definer set search_path = '' as $$
    begin
      if exists (select 1 from public.test_fail_writes where on_) then
        raise exception using errcode = '53000', message = 'insufficient resources (test)';
      end if;
      return new;
    end $$`);
  await server.db.query('drop trigger if exists test_fail_writes on public.user_databases');
  await server.db.query(
    'create trigger test_fail_writes before update on public.user_databases for each row execute function public.test_fail_writes()',
  );
});
afterEach(async () => {
  await server.db.query('delete from public.test_fail_writes');
  for (const d of open.splice(0)) await d.close();
});
afterAll(async () => {
  await server?.stop();
});

function pair(): Promise<[Device, Device]> {
  return devicePair(server, open, { firstRow: true });
}

function ids(doc: unknown): string[] {
  const t = (doc as { tables: Record<string, { rows: unknown[][] }> }).tables.projects;
  return (t?.rows ?? []).map((r) => String(r[0])).sort();
}

describe('server errors through the whole engine', () => {
  it('5xx: the outbox is kept, sync backs off and retries until the server recovers; applied once', async () => {
    const [a, b] = await pair();
    await server.db.query('insert into public.test_fail_writes values (true)');
    await a.db.table('projects').insert({ id: 'p_2', title: 'Second', status: 'open' });
    await a.db.table('projects').update('p_1', { n: 1 });
    await eventually(
      () => a.engine.status.lastError instanceof ServerError && a.engine.status.state === 'backoff',
      10_000,
      'backoff after 503',
    );
    const failed = a.statuses.map((s) => s.lastError).filter((e) => e instanceof ServerError);
    expect(failed[0]?.status).toBe(503);
    expect(a.engine.status.pendingCount).toBe(2);
    // several retries fail, none loses anything
    const patches = () => a.rpc.calls.filter((c) => c === 'userdb_patch').length;
    const before = patches();
    await eventually(() => patches() >= before + 2, 10_000, 'retries');
    expect(a.engine.status.pendingCount).toBe(2);
    await server.db.query('delete from public.test_fail_writes');
    await a.engine.flush();
    await converged([a, b]);
    expect(ids(await serverDoc(b.sb))).toEqual(['p_1', 'p_2']);
    expect(await b.db.table('projects').get('p_1')).toMatchObject({ n: 1 });
    expect(await a.db.heldEntries()).toEqual([]);
  });

  it('22023 from the patch applier: the entry is held with the error, later writes sync', async () => {
    const [a, b] = await pair();
    // the server document drifts from A's base without a new token (as a bad restore would do):
    // A's update compiles to an index the server no longer has, which userdb_patch refuses (22023)
    await server.db.query('alter table public.user_databases disable trigger user');
    try {
      await server.db.query(
        `update public.user_databases set db = jsonb_set(db, '{tables,projects,rows}', '[]'::jsonb) where user_id = '${a.db.userId}'`,
      );
    } finally {
      await server.db.query('alter table public.user_databases enable trigger user');
    }
    await a.db.table('projects').update('p_1', { title: 'Edited' });
    await expect(a.db.flush()).rejects.toBeInstanceOf(BadPatchError);
    const held = await a.db.heldEntries();
    expect(held).toHaveLength(1);
    expect(held[0]?.error).toBeInstanceOf(BadPatchError);
    expect(held[0]?.error.message).toMatch(/userdb_patch/);
    expect(a.engine.status.state).not.toBe('error');
    // not stuck: a new row goes through
    await a.db.table('projects').insert({ id: 'p_2', title: 'Second', status: 'open' });
    await a.db.flush();
    await b.engine.pull();
    await eventually(async () => (await b.db.table('projects').get('p_2')) !== undefined, 10_000, 'p_2 on B');
    expect(ids(await serverDoc(b.sb))).toEqual(['p_2']);
  });
});
