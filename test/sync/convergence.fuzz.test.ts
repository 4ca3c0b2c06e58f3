/**
 * Convergence fuzz: three devices of one user edit at random (insert, update, delete, create and
 * drop a table, add a field, transactions), go offline and online, lose responses after commit, get
 * their sockets cut, are closed and reopened mid-sync, and die abruptly (requests in flight lost,
 * closed without waiting). At quiescence every device must hold the server's document, every edit
 * nobody overrode must be in it, and a row deleted in a case and inserted by nobody must be gone.
 * The delta path gets its own faults: change Broadcasts lost, duplicated or held back and delivered
 * after the next one (per socket), and the server's change log pruned (all of it, or all but the
 * newest entries), so a device that was offline must catch up with the whole document.
 * The three devices live through all cases: each case starts from the quiescent state the previous
 * one ended in.
 *
 * Seeded and reproducible: the seed is printed; `FUZZ_SEED=<seed> FUZZ_RUNS=<n>` replays/extends.
 * A failing case is shrunk (fast-check) within the time left, and the smallest one found is printed.
 * The timeout grows with FUZZ_RUNS (FUZZ_CASE_MS per case, 4 s by default).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BroadcastDecider,
  type BroadcastFate,
  type DevServer,
  startDevServer,
} from '../../src/devserver/index.js';
import { UserDbError } from '../../src/errors.js';
import {
  converged,
  type Device,
  eventually,
  newUser,
  openDevice,
  serverDoc,
  sortDoc,
  stableJson,
  type User,
} from './helpers/devices.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 50);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
/** Time budget per case: generous, as a case waits for convergence over real sockets. */
const CASE_MS = Number(process.env.FUZZ_CASE_MS ?? 4_000);
const TIMEOUT_MS = 120_000 + RUNS * CASE_MS;
const KEYS = ['k0', 'k1', 'k2', 'k3'];
const TABLES = ['projects', 'notes'] as const;
const NOTES_SCHEMA = {
  fields: [
    { name: 'id', type: 'string' as const },
    { name: 'title', type: 'string' as const },
    { name: 'status', type: 'string' as const },
  ],
  primaryKey: ['id'],
};

type Table = (typeof TABLES)[number];
type Edit =
  | { kind: 'insert'; table: Table; key: string }
  | { kind: 'update'; table: Table; key: string; field: 'title' | 'status' }
  | { kind: 'delete'; table: Table; key: string }
  | { kind: 'createTable' }
  | { kind: 'dropTable'; table: Table }
  | { kind: 'addField' }
  | { kind: 'setExtra'; key: string };
type Action =
  | { kind: 'edit'; device: number; edit: Edit }
  | { kind: 'transaction'; device: number; edits: Edit[] }
  | { kind: 'offline'; device: number; offline: boolean }
  | { kind: 'dropResponse' }
  | { kind: 'cutSockets' }
  | { kind: 'reload'; device: number }
  | { kind: 'crash'; device: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'broadcastFaults'; fates: BroadcastFate[] }
  | { kind: 'truncateLog'; keep: number };

const table = fc.constantFrom<Table>(...TABLES);
const key = fc.constantFrom(...KEYS);
const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('insert' as const), table, key }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      table,
      key,
      field: fc.constantFrom('title' as const, 'status' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), table, key }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'createTable' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropTable' as const), table }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'addField' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('setExtra' as const), key }) },
);
const device = fc.integer({ min: 0, max: 2 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('edit' as const), device, edit }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('transaction' as const),
      device,
      edits: fc.array(edit, { minLength: 2, maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('offline' as const), device, offline: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'dropResponse' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'cutSockets' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reload' as const), device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), device }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 40 }) }),
  },
  {
    // the change Broadcasts to the user's sockets from now until the case's pushes are done: the
    // fates in turn, in delivery order
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('broadcastFaults' as const),
      fates: fc.array(fc.constantFrom<BroadcastFate>('deliver', 'drop', 'duplicate', 'hold'), {
        minLength: 1,
        maxLength: 6,
      }),
    }),
  },
  {
    // the server prunes the user's change log: all of it, or all but the newest entries
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('truncateLog' as const), keep: fc.integer({ min: 0, max: 2 }) }),
  },
);

/** What the devices did: per row key, who deleted it; per cell, the values each device wrote last. */
class Model {
  readonly deleted = new Set<string>();
  /** Tables dropped in this case: their cells may be gone (table-level last writer wins). */
  readonly dropped = new Set<string>();
  readonly writes = new Map<string, Map<number, string | null>>();
  readonly inserted = new Map<string, Set<number>>();

  write(dev: number, t: Table, k: string, field: string, value: string | null): void {
    const cell = `${t}/${k}/${field}`;
    const byDevice = this.writes.get(cell) ?? new Map<number, string | null>();
    byDevice.set(dev, value);
    this.writes.set(cell, byDevice);
  }
}

let counter = 0;

/** Runs one edit on a device; returns the model effects to record if its write commits. */
async function runEdit(d: Device, dev: number, e: Edit, effects: ((m: Model) => void)[]): Promise<void> {
  const db = d.db;
  try {
    if (e.kind === 'createTable') {
      const schemas = await db.tableSchemas();
      if (schemas.notes !== undefined) return;
      await db.createTable('notes', NOTES_SCHEMA);
      return;
    }
    if (e.kind === 'dropTable') {
      const schemas = await db.tableSchemas();
      if (schemas[e.table] === undefined) return;
      await db.dropTable(e.table);
      effects.push((m) => m.dropped.add(e.table));
      return;
    }
    if (e.kind === 'addField') {
      const notes = (await db.tableSchemas()).notes;
      if (notes === undefined || notes.fields.some((f) => f.name === 'extra')) return;
      await db.addField('notes', { name: 'extra', type: 'string' });
      return;
    }
    if (e.kind === 'setExtra') {
      const notes = (await db.tableSchemas()).notes;
      if (notes === undefined || !notes.fields.some((f) => f.name === 'extra')) return;
      const t = db.untypedTable('notes');
      if ((await t.get(e.key)) === undefined) return;
      counter += 1;
      const value = `d${dev}-x${counter}`;
      await t.update(e.key, { extra: value });
      effects.push((m) => m.write(dev, 'notes', e.key, 'extra', value));
      return;
    }
    const schemas = await db.tableSchemas();
    if (schemas[e.table] === undefined) return;
    const t = e.table === 'projects' ? db.table('projects') : db.untypedTable('notes');
    counter += 1;
    const value = `d${dev}-w${counter}`;
    if (e.kind === 'insert') {
      if ((await t.get(e.key)) !== undefined) return;
      // an insert writes every field: those it does not set are null (the `extra` of notes), and a
      // row inserted remotely meanwhile is replaced whole (docs/sync.md, conflict table)
      const unset = (schemas[e.table]?.fields ?? [])
        .map((f) => f.name)
        .filter((f) => f !== 'id' && f !== 'title' && f !== 'status');
      await t.insert({ id: e.key, title: value, status: value });
      effects.push((m) => {
        m.write(dev, e.table, e.key, 'title', value);
        m.write(dev, e.table, e.key, 'status', value);
        for (const f of unset) m.write(dev, e.table, e.key, f, null);
        const who = m.inserted.get(`${e.table}/${e.key}`) ?? new Set<number>();
        who.add(dev);
        m.inserted.set(`${e.table}/${e.key}`, who);
      });
    } else if (e.kind === 'update') {
      if ((await t.get(e.key)) === undefined) return;
      await t.update(e.key, { [e.field]: value });
      effects.push((m) => m.write(dev, e.table, e.key, e.field, value));
    } else {
      if (!(await t.delete(e.key))) return;
      effects.push((m) => m.deleted.add(`${e.table}/${e.key}`));
    }
  } catch (err) {
    // a row or table that a concurrent local change removed: not an edit
    if (!(err instanceof UserDbError) || !['not_found', 'duplicate_key', 'schema'].includes(err.code))
      throw err;
  }
}

/** Log truncations run and change Broadcasts a fault decided on (reported at the end). */
let truncations = 0;
let seenBroadcasts = 0;
let server: DevServer;
const devices: Device[] = [];
let user: User;

beforeAll(async () => {
  server = await startDevServer({ port: 0 });
  user = await newUser(server);
  for (let i = 0; i < 3; i++) devices.push(await openDevice(server, user));
});
afterAll(async () => {
  if (server !== undefined)
    console.log(
      'convergence fuzz: broadcast faults',
      server.faults.broadcastFaults,
      'log truncations',
      truncations,
      'change broadcasts decided',
      seenBroadcasts,
    );
  for (const d of devices) await d.close();
  await server?.stop();
});

/** Prints what each device holds against the server when they did not converge. */
async function describeDivergence(): Promise<void> {
  const server = stableJson(sortDoc(await serverDoc(devices[0]?.sb as Device['sb'])));
  const lines = [`server: ${server}`];
  for (const [i, d] of devices.entries()) {
    const local = stableJson(sortDoc(await d.db.export()));
    const { state, pendingCount, leader, online, lastError } = d.engine.status;
    lines.push(
      `device ${i}: ${JSON.stringify({ state, pendingCount, leader, online, lastError: lastError?.message })}`,
      local === server ? '  holds the server document' : `  holds ${local}`,
    );
  }
  console.log(`convergence fuzz: no convergence\n${lines.join('\n')}`);
}

describe('convergence fuzz', () => {
  it(
    `3 devices converge with every uncontested edit kept (runs=${RUNS}, seed=${SEED})`,
    async () => {
      console.log(`convergence fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
      await fc.assert(
        fc.asyncProperty(fc.array(action, { minLength: 4, maxLength: 14 }), async (actions) => {
          // each case starts from the quiescent state the previous one ended in
          server.faults.reset();
          const dropsBefore = server.faults.broadcastFaults.drop;
          let decider: BroadcastDecider | undefined;
          const model = new Model();
          {
            for (const a of actions) {
              if (a.kind === 'edit' || a.kind === 'transaction') {
                const d = devices[a.device] as Device;
                const effects: ((m: Model) => void)[] = [];
                if (a.kind === 'edit') await runEdit(d, a.device, a.edit, effects);
                else {
                  await d.db.transaction(async () => {
                    for (const e of a.edits) await runEdit(d, a.device, e, effects);
                  });
                }
                for (const effect of effects) effect(model);
              } else if (a.kind === 'offline') devices[a.device]?.setOffline(a.offline);
              else if (a.kind === 'dropResponse') server.faults.dropResponseAfterCommit(1);
              else if (a.kind === 'cutSockets') server.faults.closeAllSockets();
              else if (a.kind === 'reload') {
                // close the tab mid-sync and open it again on the same IndexedDB
                const old = devices[a.device] as Device;
                await old.close();
                devices[a.device] = await openDevice(server, user, { indexedDB: old.indexedDB });
              } else if (a.kind === 'crash') {
                // the tab dies: requests in flight never answer, nothing waits for them, and a new
                // tab opens on the same IndexedDB at once (it leads once the lock is released)
                const old = devices[a.device] as Device;
                old.setOffline(true);
                const closing = old.close().catch(() => undefined);
                devices[a.device] = await openDevice(server, user, { indexedDB: old.indexedDB });
                await closing;
              } else if (a.kind === 'broadcastFaults') {
                let next = 0;
                const topic = `userdb:${user.id}`;
                decider = (d) => {
                  if (d.topic !== topic) return 'deliver';
                  seenBroadcasts++;
                  return a.fates[next++ % a.fates.length] ?? 'deliver';
                };
                server.faults.broadcasts(decider);
              } else if (a.kind === 'truncateLog') {
                await server.db.query(
                  `delete from userdb.changes where user_id = $1 and id not in
                     (select id from userdb.changes where user_id = $1 order by id desc limit $2)`,
                  [user.id, a.keep],
                );
                truncations++;
              } else await new Promise((resolve) => setTimeout(resolve, a.ms));
            }
            // quiescence: everyone online, no more faults
            server.faults.reset();
            for (const d of devices) d.setOffline(false);
            if (decider !== undefined) {
              // the Broadcast faults go on while the devices push what they hold
              const stop = server.faults.broadcasts(decider);
              await eventually(
                () => devices.every((d) => d.engine.status.pendingCount === 0),
                30_000,
                'pushes',
              );
              stop();
            }
            if (server.faults.broadcastFaults.drop > dropsBefore) {
              // Realtime delivers at most once: a device that lost the last change Broadcast learns
              // of it from its safety-net pull (pollIntervalMs, off in these devices), done here once
              for (const d of devices) await d.engine.pull();
            }
            try {
              await converged(devices, 30_000);
            } catch (err) {
              await describeDivergence();
              throw err;
            }
            const doc = (await serverDoc(devices[0]?.sb as Device['sb'])) as {
              tables: Record<string, { schema: { fields: { name: string }[] }; rows: string[][] }>;
            };
            for (const rowId of model.deleted) {
              // deleted in this case and inserted by nobody: gone (an update elsewhere does not revive it)
              const [t, k] = rowId.split('/') as [string, string];
              if (model.inserted.has(rowId)) continue;
              expect(
                doc.tables[t]?.rows.find((r) => r[0] === k),
                `deleted row ${rowId}`,
              ).toBeUndefined();
            }
            for (const [cell, byDevice] of model.writes) {
              const [t, k, field] = cell.split('/') as [string, string, string];
              const tbl = doc.tables[t];
              if (model.dropped.has(t)) {
                // contested at table level: if the cell survived, it holds a value written in this case
                const col = tbl?.schema.fields.findIndex((f) => f.name === field) ?? -1;
                const row = tbl?.rows.find((r) => r[0] === k);
                if (row !== undefined && col >= 0 && model.inserted.has(`${t}/${k}`)) {
                  expect([...byDevice.values(), null], cell).toContain(row[col]);
                }
                continue;
              }
              if (model.deleted.has(`${t}/${k}`)) {
                // deleted and inserted again: if the row is there, its cell holds a value of this case
                const col = tbl?.schema.fields.findIndex((f) => f.name === field) ?? -1;
                const row = tbl?.rows.find((r) => r[0] === k);
                if (row !== undefined && col >= 0)
                  expect([...byDevice.values(), null], cell).toContain(row[col]);
                continue;
              }
              expect(tbl, `table ${t}`).toBeDefined();
              const col = tbl?.schema.fields.findIndex((f) => f.name === field) ?? -1;
              const row = tbl?.rows.find((r) => r[0] === k);
              expect(row, `row ${t}/${k}`).toBeDefined();
              const value = row?.[col];
              if (byDevice.size === 1) {
                // nobody else wrote this cell: the last write of its only writer is there
                expect(value, cell).toBe([...byDevice.values()][0]);
              } else {
                expect([...byDevice.values()], cell).toContain(value);
              }
            }
          }
        }),
        {
          numRuns: RUNS,
          seed: SEED,
          // shrink a failure within the test's time (each attempt replays over real sockets);
          // running out of time is a failure, never a pass
          interruptAfterTimeLimit: TIMEOUT_MS - 30_000,
          markInterruptAsFailure: true,
        },
      );
    },
    TIMEOUT_MS,
  );
});
