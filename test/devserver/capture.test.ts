/**
 * The capture behind `postgres_changes` runs in the writer's transaction (hosted Realtime reads
 * the write-ahead log outside it), so it does its work only while a server has a subscription
 * that can match the table: `_userdb_realtime.listeners`, written before the channel hears
 * "Subscribed to PostgreSQL", renewed while it lasts, removed when it ends, expiring when its
 * server died.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, signedUp, subscribed, waitFor } from './helpers.js';

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

/** Changes queued for delivery so far (ids come from one sequence, notified or stored alike). */
async function queued(): Promise<number> {
  const rows = await server.db.query<{ n: string }>(
    'select last_value - (case when is_called then 0 else 1 end) as n from _userdb_realtime.changes_id_seq',
  );
  return Number(rows[0]?.n ?? 0);
}

async function listeners(): Promise<{ schema_name: string; table_name: string }[]> {
  return server.db.query('select schema_name, table_name from _userdb_realtime.listeners order by 1, 2');
}

describe('capture only while someone listens', () => {
  it('an update nobody subscribed to queues nothing; a subscription makes it queue and deliver', async () => {
    const a = await signedUp(server);
    expect((await a.sb.rpc('userdb_init')).error).toBeNull();
    const write = async (v: string) =>
      expect(
        (
          await a.sb.rpc('userdb_set', {
            path: ['tables', 't'],
            value: { schema: { fields: [], primaryKey: [] }, rows: [], v },
          })
        ).error,
      ).toBeNull();

    expect(await listeners()).toEqual([]);
    const before = await queued();
    await write('unheard');
    // userdb's own Broadcast (realtime.send) is captured by its own trigger: one message queued,
    // and nothing for postgres_changes
    const broadcastOnly = (await queued()) - before;
    expect(broadcastOnly).toBe(1);

    const seen: unknown[] = [];
    const channel = a.sb
      .channel('capture')
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'user_databases' }, (p) =>
        seen.push(p.new),
      );
    await subscribed(channel);
    expect(await listeners()).toEqual([{ schema_name: 'public', table_name: 'user_databases' }]);
    const mark = await queued();
    await write('heard');
    expect((await queued()) - mark).toBe(broadcastOnly + 1);
    await waitFor(() => seen.length === 1, 10_000, 'the change is delivered');

    await a.sb.removeChannel(channel);
    for (let i = 0; (await listeners()).length > 0; i++) {
      expect(i, 'the listener row is removed').toBeLessThan(200);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const after = await queued();
    await write('unheard again');
    expect((await queued()) - after).toBe(broadcastOnly);
  });

  it("a dead server's rows stop the capture once they expire; any table matches '*'", async () => {
    const a = await signedUp(server);
    expect((await a.sb.rpc('userdb_init')).error).toBeNull();
    const write = async () =>
      expect((await a.sb.rpc('userdb_set', { path: ['version'], value: 1 })).error).toBeNull();
    await server.db.query(
      `insert into _userdb_realtime.listeners values ('gone', 'public', '*', clock_timestamp() + interval '1 hour')`,
    );
    let mark = await queued();
    await write();
    expect((await queued()) - mark).toBe(2); // the row change and userdb's Broadcast
    await server.db.query(
      `update _userdb_realtime.listeners set expires_at = clock_timestamp() - interval '1 second' where server_id = 'gone'`,
    );
    mark = await queued();
    await write();
    expect((await queued()) - mark).toBe(1); // only the Broadcast
    await server.db.query(`delete from _userdb_realtime.listeners where server_id = 'gone'`);
  });
});
