/**
 * Delta sync on the server (supabase/migrations/20261201000000_userdb_delta.sql) on every
 * engine: the change log, `userdb_pull(since, delta)`, Broadcast through realtime.send, the
 * bounded exactly-once bookkeeping, and the upgrade from the first migration.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCompact, type CompactDoc, type Json, type PatchOp } from '../../src/doc/index.js';
import { type Engine, engines, type Queryable, schemaScripts } from './engines.js';

interface SqlError {
  code: string;
  message: string;
}

async function sqlError(p: Promise<unknown>): Promise<SqlError> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    return { code: String(err.code), message: String(err.message) };
  }
  throw new Error('expected an SQL error, got a result');
}

interface Change {
  before: string;
  after: string;
  ops: PatchOp[] | null;
  client_id: string | null;
  batch_seq: number | null;
}

type Pulled = { db: CompactDoc; updated_at: string } | { changes: Change[]; updated_at: string } | null;

interface PatchResult {
  applied: boolean;
  updated_at: string;
}

const PROJECTS = {
  schema: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'title', type: 'string' },
    ],
    primaryKey: ['id'],
  },
  rows: Array.from({ length: 40 }, (_, i) => [`p${i}`, `Project number ${i}, with a title long enough`]),
};

/** Applies a chain of changes to a document as a client would. */
function applyChain(doc: CompactDoc, changes: Change[]): CompactDoc {
  let out = doc;
  for (const c of changes) {
    if (c.ops === null) throw new Error('reset in a delta answer');
    for (const op of c.ops) {
      out =
        op.path === '' && op.op === 'replace' ? (op.value as unknown as CompactDoc) : applyCompact(out, [op]);
    }
  }
  return out;
}

/** A function redefinition (a setting of the migration) for one block. */
const redefine = (name: string, returns: string, value: string) =>
  `create or replace function userdb.${name}() returns ${returns} language sql immutable
   set search_path = '' as $$ select ${value} $$;`;

const DEFAULTS = [
  redefine('log_max_age', 'interval', `interval '30 days'`),
  redefine('log_max_bytes', 'bigint', '2097152::bigint'),
  redefine('broadcast_max_bytes', 'bigint', '32768::bigint'),
  redefine('clients_max_age', 'interval', `interval '400 days'`),
  redefine('clients_max_count', 'integer', '1000'),
  redefine('max_bytes', 'bigint', '8388608::bigint'),
].join('\n');

describe.each(engines().map((f) => [f.name, f] as const))('delta sync on %s', (_name, factory) => {
  let engine: Engine;

  beforeAll(async () => {
    engine = await factory.open();
  });
  afterAll(async () => {
    await engine?.close();
  });

  /** Runs fn with some settings redefined, then restores the defaults. */
  async function withSettings<T>(sql: string, fn: () => Promise<T>): Promise<T> {
    await engine.admin((q) => q.exec(sql));
    try {
      return await fn();
    } finally {
      await engine.admin((q) => q.exec(DEFAULTS));
    }
  }

  async function newUser(): Promise<string> {
    const id = randomUUID();
    await engine.admin((q) =>
      q.rows(
        `insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)`,
        [id, `${id}@example.test`],
      ),
    );
    return id;
  }

  const as = <T>(uid: string, fn: (q: Queryable) => Promise<T>) => engine.asUser(uid, fn);

  const patch = (
    uid: string,
    ops: unknown,
    expected: string,
    clientId: string | null = null,
    seq: number | null = null,
  ) =>
    as(uid, (q) =>
      q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
        JSON.stringify(ops),
        expected,
        clientId,
        seq,
      ]),
    );

  const set = (uid: string, path: string[], value: unknown) =>
    as(uid, (q) =>
      q.one<string>(`select to_json(public.userdb_set($1, $2::jsonb)) #>> '{}'`, [
        path,
        JSON.stringify(value),
      ]),
    );

  const pull = (uid: string, since: string | null, delta = true) =>
    as(uid, (q) => q.one<Pulled>('select public.userdb_pull($1::timestamptz, $2)', [since, delta]));

  const stored = (uid: string) =>
    engine.admin(async (q) => {
      const rows = await q.rows<{ db: CompactDoc; updated_at: string; clients: Record<string, unknown> }>(
        `select db, to_json(updated_at) #>> '{}' as updated_at, clients from public.user_databases where user_id = $1`,
        [uid],
      );
      return rows[0]!;
    });

  const logOf = (uid: string) =>
    engine.admin((q) =>
      q.rows<Change & { bytes: number; total: number; [k: string]: unknown }>(
        `select to_json(before) #>> '{}' as before, to_json(after) #>> '{}' as after, ops, client_id,
                batch_seq::int, bytes::int, total::int
           from userdb.changes where user_id = $1 order by id`,
        [uid],
      ),
    );

  async function userWithProjects(): Promise<{ uid: string; token: string; doc: CompactDoc }> {
    const uid = await newUser();
    await as(uid, (q) => q.one('select public.userdb_init()'));
    const token = await set(uid, ['tables', 'projects'], PROJECTS);
    return { uid, token, doc: (await stored(uid)).db };
  }

  /** n one-cell edits through userdb_patch; returns the final token. */
  async function edits(uid: string, token: string, n: number, from = 0): Promise<string> {
    let t = token;
    for (let i = 0; i < n; i++) {
      const r = await patch(
        uid,
        [{ op: 'replace', path: `/tables/projects/rows/${(from + i) % 40}/1`, value: `edit ${from + i}` }],
        t,
        'dev-a',
        from + i + 1,
      );
      t = r.updated_at;
    }
    return t;
  }

  // The log and the delta pull -------------------------------------------------------

  describe('change log and userdb_pull(since, delta)', () => {
    it('logs every change through the RPCs in commit order, and answers the chain from since', async () => {
      const { uid, token, doc } = await userWithProjects();
      const t1 = await edits(uid, token, 3);
      const t2 = await set(uid, ['tables', 'projects', 'rows', '0', '1'], 'set by userdb_set');
      const r = await patch(uid, [{ op: 'remove', path: '/tables/projects/rows/5' }], t2, 'dev-b', 1);

      const log = await logOf(uid);
      // (the first entry is the userdb_set that created the table)
      expect(log.map((e) => e.client_id)).toEqual([null, 'dev-a', 'dev-a', 'dev-a', null, 'dev-b']);
      for (let i = 1; i < log.length; i++) expect(log[i]!.before).toBe(log[i - 1]!.after);
      expect(log.at(-1)!.after).toBe(r.updated_at);

      const answer = await pull(uid, token);
      expect(answer).not.toBeNull();
      if (answer === null || !('changes' in answer)) throw new Error('expected a delta');
      expect(answer.updated_at).toBe(r.updated_at);
      expect(answer.changes).toHaveLength(5);
      // oldest first; only the first carries `before` (each other's is the previous `after`)
      expect(answer.changes[0]!.before).toBe(token);
      for (let i = 1; i < answer.changes.length; i++) expect(answer.changes[i]).not.toHaveProperty('before');
      expect(answer.changes.map((c) => c.after)).toEqual(log.slice(-5).map((c) => c.after));
      expect(answer.changes.at(-1)!.after).toBe(r.updated_at);
      expect(answer.changes[2]!.after).toBe(t1);
      expect(answer.changes[3]).toEqual({
        after: t2,
        ops: [{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'set by userdb_set' }],
        client_id: null,
        batch_seq: null,
      });
      expect(answer.changes[4]).toMatchObject({ client_id: 'dev-b', batch_seq: 1 });
      expect(applyChain(doc, answer.changes)).toEqual((await stored(uid)).db);

      // From the middle of the chain; nothing newer; whole document without delta.
      const mid = await pull(uid, t1);
      expect(mid !== null && 'changes' in mid && mid.changes.map((c) => [c.before, c.after])).toEqual([
        [t1, t2],
        [undefined, r.updated_at],
      ]);
      expect(await pull(uid, r.updated_at)).toBeNull();
      expect(await pull(uid, token, false)).toEqual({ db: (await stored(uid)).db, updated_at: r.updated_at });
      expect(await pull(uid, null)).toEqual({ db: (await stored(uid)).db, updated_at: r.updated_at });
    });

    it('a retried batch (not applied) and a failed patch log nothing', async () => {
      const { uid, token } = await userWithProjects();
      const ops = [{ op: 'replace', path: '/version', value: 1 }];
      const first = await patch(uid, ops, token, 'c', 1);
      const n = (await logOf(uid)).length;
      expect(await patch(uid, ops, token, 'c', 1)).toEqual({ applied: false, updated_at: first.updated_at });
      await sqlError(patch(uid, [{ op: 'remove', path: '/nope' }], first.updated_at, 'c', 2));
      await sqlError(patch(uid, ops, token, 'c', 3));
      expect(await logOf(uid)).toHaveLength(n);
    });

    it('userdb_set logs the equivalent RFC 6902 ops (add/replace, [] when nothing changes)', async () => {
      const { uid } = await userWithProjects();
      await set(uid, ['list'], [1, 2, 3]);
      await set(uid, ['obj'], { 'a/b': { '~k': 1 } });
      const cases: [string[], unknown, PatchOp[]][] = [
        [['version'], 2, [{ op: 'replace', path: '/version', value: 2 }]],
        [['fresh'], 'x', [{ op: 'add', path: '/fresh', value: 'x' }]],
        [['obj', 'a/b', '~k'], 2, [{ op: 'replace', path: '/obj/a~1b/~0k', value: 2 }]],
        [['obj', 'a/b', 'new'], 3, [{ op: 'add', path: '/obj/a~1b/new', value: 3 }]],
        [['list', '1'], 20, [{ op: 'replace', path: '/list/1', value: 20 }]],
        [['list', '-1'], 30, [{ op: 'replace', path: '/list/2', value: 30 }]],
        [['list', '9'], 40, [{ op: 'add', path: '/list/-', value: 40 }]],
        [['list', '-9'], 0, [{ op: 'add', path: '/list/0', value: 0 }]],
        [['missing', 'x'], 1, []],
        [['version', 'x'], 1, []],
        [['list', '99', 'x'], 1, []],
        [
          ['tables', 'projects', 'rows', '-1', '0'],
          'last',
          [{ op: 'replace', path: '/tables/projects/rows/39/0', value: 'last' }],
        ],
      ];
      for (const [path, value, ops] of cases) {
        const before = await stored(uid);
        const after = await set(uid, path, value);
        const entry = (await logOf(uid)).at(-1)!;
        expect(entry, path.join('/')).toMatchObject({ before: before.updated_at, after, ops });
        expect(applyCompact(before.db, ops), path.join('/')).toEqual((await stored(uid)).db);
      }
      const whole = { version: 1, tables: {} };
      const before = await stored(uid);
      const after = await set(uid, [], whole);
      expect((await logOf(uid)).at(-1)).toMatchObject({
        before: before.updated_at,
        after,
        ops: [{ op: 'replace', path: '', value: whole }],
      });
    });

    it('a gap in the chain answers the whole document', async () => {
      const { uid, token } = await userWithProjects();
      const last = await edits(uid, token, 4);
      await engine.admin((q) =>
        q.rows(
          `delete from userdb.changes where user_id = $1
              and id = (select id from userdb.changes where user_id = $1 order by id offset 2 limit 1)`,
          [uid],
        ),
      );
      const answer = await pull(uid, token);
      expect(answer).toEqual({ db: (await stored(uid)).db, updated_at: last });
    });

    it('a log pruned past since answers the whole document (by bytes and by age)', async () => {
      const { uid, token } = await userWithProjects();
      const entryBytes = (await logOf(uid)).at(-1)!.bytes;
      expect(entryBytes).toBeGreaterThan(0);
      // By bytes: room for about three one-cell edits.
      const t3 = await withSettings(redefine('log_max_bytes', 'bigint', '600::bigint'), async () => {
        const t = await edits(uid, token, 3);
        const t6 = await edits(uid, t, 3, 3);
        const log = await logOf(uid);
        expect(log.length).toBeLessThan(4);
        expect(log.at(-1)!.total - log[0]!.total + log[0]!.bytes).toBeLessThanOrEqual(600);
        expect(await pull(uid, token)).toEqual({ db: (await stored(uid)).db, updated_at: t6 });
        return t6;
      });
      // By age: each write drops everything older than a microsecond.
      await withSettings(redefine('log_max_age', 'interval', `interval '1 microsecond'`), async () => {
        const t = await edits(uid, t3, 2, 10);
        expect(await logOf(uid)).toHaveLength(1);
        expect(await pull(uid, t3)).toEqual({ db: (await stored(uid)).db, updated_at: t });
      });
    });

    it('a single change larger than the log retention is logged as a reset', async () => {
      const { uid, token } = await userWithProjects();
      await withSettings(redefine('log_max_bytes', 'bigint', '300::bigint'), async () => {
        await patch(uid, [{ op: 'add', path: '/blob', value: 'z'.repeat(400) }], token);
        expect((await logOf(uid)).at(-1)!.ops).toBeNull();
      });
      expect('db' in ((await pull(uid, token)) ?? {})).toBe(true);
    });

    it('a chain larger than the document answers the document; a smaller one, the chain', async () => {
      const { uid, token: t0 } = await userWithProjects();
      // Four changes of 1,000 bytes each outweigh the document; one does not.
      let t = t0;
      for (let i = 0; i < 4; i++) {
        t = (await patch(uid, [{ op: 'add', path: '/note', value: String(i).repeat(1000) }], t)).updated_at;
      }
      const doc = await stored(uid);
      expect(JSON.stringify(doc.db).length).toBeLessThan(4 * 1000);
      expect(JSON.stringify(doc.db).length).toBeGreaterThan(2 * 1100);
      expect(await pull(uid, t0)).toEqual({ db: doc.db, updated_at: t });
      // The last change alone is smaller than the document.
      const log = await logOf(uid);
      const since = log.at(-1)!.before;
      const answer = await pull(uid, since);
      expect(answer !== null && 'changes' in answer && answer.changes).toHaveLength(1);
    });

    it('a direct write (Data API or service_role) is a reset: pulls across it get the document', async () => {
      const { uid, token } = await userWithProjects();
      const t1 = await edits(uid, token, 2);
      await as(uid, (q) =>
        q.rows(`update public.user_databases set db = jsonb_set(db, '{version}', '1') where user_id = $1`, [
          uid,
        ]),
      );
      const reset = await stored(uid);
      expect((await logOf(uid)).at(-1)).toMatchObject({ before: t1, after: reset.updated_at, ops: null });
      expect(await pull(uid, token)).toEqual({ db: reset.db, updated_at: reset.updated_at });
      expect(await pull(uid, t1)).toEqual({ db: reset.db, updated_at: reset.updated_at });
      // After the reset, deltas again.
      const t2 = await edits(uid, reset.updated_at, 1, 2);
      const after = await pull(uid, reset.updated_at);
      expect(after !== null && 'changes' in after && after.updated_at).toBe(t2);
      // service_role's direct write too.
      await engine.asUser(
        null,
        (q) => q.rows(`update public.user_databases set db = db where user_id = $1`, [uid]),
        { role: 'service_role' },
      );
      expect((await logOf(uid)).at(-1)!.ops).toBeNull();
      expect('db' in ((await pull(uid, t2)) ?? {})).toBe(true);
    });

    it('a write staged for another transition is not logged with those ops', async () => {
      const { uid, token } = await userWithProjects();
      // A stale staged change (wrong token before) in the transaction of a direct write.
      await engine.asUser(uid, async (q) => {
        await q.rows(
          `select userdb.stage_change($1, '2000-01-01', '[{"op":"add","path":"/x","value":1}]', null, null)`,
          [uid],
        );
        await q.rows(`update public.user_databases set db = db where user_id = $1`, [uid]);
      });
      expect((await logOf(uid)).at(-1)).toMatchObject({ before: token, ops: null });
    });
  });

  // Row level security of the log ------------------------------------------------------

  describe('the log: readable by its owner only, writable by nobody through the API', () => {
    it('owner selects their own entries; no one inserts, updates or deletes them', async () => {
      const a = await userWithProjects();
      const b = await userWithProjects();
      await edits(b.uid, b.token, 1);
      const seen = await as(a.uid, (q) => q.rows<{ user_id: string }>('select user_id from userdb.changes'));
      expect(seen.length).toBeGreaterThan(0);
      expect(new Set(seen.map((r) => r.user_id))).toEqual(new Set([a.uid]));

      const dml = [
        `insert into userdb.changes (user_id, before, after, ops, bytes, total)
           values ('${a.uid}', now(), now() + interval '1 day', '[]', 2, 2)`,
        `update userdb.changes set ops = '[]' where user_id = '${a.uid}'`,
        `delete from userdb.changes where user_id = '${a.uid}'`,
        'truncate userdb.changes',
      ];
      for (const role of ['authenticated', 'anon', 'service_role'] as const) {
        for (const sql of dml) {
          const err = await sqlError(engine.asUser(a.uid, (q) => q.rows(sql), { role }));
          expect(err.code, `${role}: ${sql}`).toBe('42501');
        }
      }
      const anonRead = await sqlError(
        engine.asUser(null, (q) => q.rows('select * from userdb.changes'), { role: 'anon' }),
      );
      expect(anonRead.code).toBe('42501');
    });

    it('a forged entry (written by a superuser) cannot extend a chain: pulls across it get the document', async () => {
      const { uid, token } = await userWithProjects();
      const t1 = await edits(uid, token, 2);
      // A second entry for an existing transition is refused.
      const dup = await sqlError(
        engine.admin((q) =>
          q.rows(
            `insert into userdb.changes (user_id, before, after, ops, bytes, total)
             values ($1, $2, $3, '[{"op":"remove","path":"/tables"}]', 10, 10)`,
            [uid, token, t1],
          ),
        ),
      );
      expect(dup.code).toBe('23505');
      // An entry that does not continue the chain (a future token) breaks it: whole document.
      await engine.admin((q) =>
        q.rows(
          `insert into userdb.changes (user_id, before, after, ops, bytes, total)
           values ($1, $2, $2::timestamptz + interval '1 hour', '[{"op":"remove","path":"/tables"}]', 10, 10)`,
          [uid, t1],
        ),
      );
      expect(await pull(uid, token)).toEqual({ db: (await stored(uid)).db, updated_at: t1 });
      // The next real write logs after the forged entry; the chain back to since still
      // has to pass through it, so the document is answered, never the forged ops.
      const t2 = await edits(uid, t1, 1, 5);
      const answer = await pull(uid, token);
      expect(answer).toEqual({ db: (await stored(uid)).db, updated_at: t2 });
      const recent = await pull(uid, t1);
      expect(recent !== null && 'changes' in recent && recent.changes.map((c) => c.before)).toEqual([t1]);
    });
  });

  // Broadcast ---------------------------------------------------------------------------

  describe('broadcast on realtime.messages', () => {
    // realtime.send adds the message id to the payload (as on Supabase); the change is the rest.
    const messages = (uid: string) =>
      engine.admin((q) =>
        q.rows<{ payload: Change; event: string; private: boolean; extension: string }>(
          `select payload - 'id' as payload, event, private, extension from realtime.messages where topic = $1 order by inserted_at, id`,
          [`userdb:${uid}`],
        ),
      );

    it('sends each change on the private topic userdb:<user_id>, with its ops when small', async () => {
      const { uid, token } = await userWithProjects();
      const before = (await messages(uid)).length;
      const r = await patch(
        uid,
        [{ op: 'replace', path: '/tables/projects/rows/1/1', value: 'B' }],
        token,
        'dev',
        4,
      );
      const sent = (await messages(uid)).slice(before);
      expect(sent).toEqual([
        {
          payload: {
            before: token,
            after: r.updated_at,
            client_id: 'dev',
            batch_seq: 4,
            ops: [{ op: 'replace', path: '/tables/projects/rows/1/1', value: 'B' }],
          },
          event: 'change',
          private: true,
          extension: 'broadcast',
        },
      ]);
    });

    it('sends ops null for a change over userdb.broadcast_max_bytes() and for a reset', async () => {
      const { uid, token } = await userWithProjects();
      const big = 'b'.repeat(40_000);
      const r = await patch(uid, [{ op: 'add', path: '/big', value: big }], token, 'dev', 1);
      let last = (await messages(uid)).at(-1)!.payload;
      expect(last).toEqual({ before: token, after: r.updated_at, client_id: 'dev', batch_seq: 1, ops: null });
      // (the log keeps the ops)
      expect((await logOf(uid)).at(-1)!.ops).toEqual([{ op: 'add', path: '/big', value: big }]);
      await as(uid, (q) =>
        q.rows(`update public.user_databases set db = db - 'big' where user_id = $1`, [uid]),
      );
      last = (await messages(uid)).at(-1)!.payload;
      expect(last).toMatchObject({ before: r.updated_at, ops: null, client_id: null });
    });

    it('only the owner may receive (select) on their topic; nobody may send (insert)', async () => {
      const a = await userWithProjects();
      const b = await userWithProjects();
      await edits(a.uid, a.token, 1);
      await edits(b.uid, b.token, 1);
      const visible = (uid: string | null, topic: string, role: 'authenticated' | 'anon' = 'authenticated') =>
        engine.asUser(
          uid,
          async (q) => {
            await q.rows(`select set_config('realtime.topic', $1, true)`, [topic]);
            return q.one<number>(`select count(*)::int from realtime.messages where topic = $1`, [topic]);
          },
          { role },
        );
      expect(await visible(a.uid, `userdb:${a.uid}`)).toBeGreaterThan(0);
      expect(await visible(a.uid, `userdb:${b.uid}`)).toBe(0);
      expect(await visible(null, `userdb:${a.uid}`, 'anon')).toBe(0);
      // A JWT whose sub is B's but whose role is anon gets nothing either.
      expect(
        await engine.asUser(
          b.uid,
          async (q) => {
            await q.rows(`select set_config('realtime.topic', $1, true)`, [`userdb:${b.uid}`]);
            return q.one<number>('select count(*)::int from realtime.messages');
          },
          { role: 'anon', claims: { sub: b.uid, role: 'anon' } },
        ),
      ).toBe(0);
      // A role not granted to the API: no policy names it.
      const outsider = await sqlError(
        engine.admin(async (q) => {
          await q.exec(`do $$ begin if not exists (select 1 from pg_roles where rolname = 'userdb_outsider')
                          then create role userdb_outsider nologin; end if; end $$;`);
          await q.exec('grant usage on schema realtime to userdb_outsider');
          await q.exec('grant select on realtime.messages to userdb_outsider');
          await q.exec('set local role userdb_outsider');
          await q.rows(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: a.uid })]);
          await q.rows(`select set_config('realtime.topic', $1, true)`, [`userdb:${a.uid}`]);
          const n = await q.one<number>('select count(*)::int from realtime.messages');
          if (n === 0) throw Object.assign(new Error('nothing visible'), { code: 'EMPTY' });
          return n;
        }),
      );
      expect(outsider.code).toBe('EMPTY');
      // No insert policy: a user cannot forge a message, even on their own topic.
      const forged = await sqlError(
        engine.asUser(a.uid, async (q) => {
          await q.rows(`select set_config('realtime.topic', $1, true)`, [`userdb:${a.uid}`]);
          await q.rows(
            `insert into realtime.messages (topic, extension, event, payload, private)
             values ($1, 'broadcast', 'change', '{"ops":[]}', true)`,
            [`userdb:${a.uid}`],
          );
        }),
      );
      expect(forged.code).toBe('42501');
    });
  });

  // Exactly-once bookkeeping ------------------------------------------------------------

  describe('clients: bounded', () => {
    it('client_id is 1 to 128 characters, else 22023 and nothing changes', async () => {
      const { uid, token } = await userWithProjects();
      const ops = [{ op: 'replace', path: '/version', value: 1 }];
      for (const id of ['', 'x'.repeat(129), 'é'.repeat(129)]) {
        const err = await sqlError(patch(uid, ops, token, id, 1));
        expect(err.code).toBe('22023');
        expect(err.message).toMatch(/client_id must be 1 to 128 characters/);
      }
      expect((await stored(uid)).updated_at).toBe(token);
      expect((await patch(uid, ops, token, 'é'.repeat(128), 1)).applied).toBe(true);
    });

    it('records [batch_seq, last seen]; prunes by count (least recently seen first) and by age', async () => {
      const { uid, token } = await userWithProjects();
      let t = token;
      const ops = [{ op: 'replace', path: '/version', value: 1 }];
      await withSettings(redefine('clients_max_count', 'integer', '3'), async () => {
        for (const c of ['c1', 'c2', 'c3']) t = (await patch(uid, ops, t, c, 1)).updated_at;
        // Make c2 the least recently seen.
        await engine.admin((q) =>
          q.rows(
            `update public.user_databases set clients = jsonb_set(clients, '{c2,1}', to_jsonb(extract(epoch from now())::bigint - 100))
              where user_id = $1`,
            [uid],
          ),
        );
        t = (await stored(uid)).updated_at;
        t = (await patch(uid, ops, t, 'c4', 1)).updated_at;
        expect(Object.keys((await stored(uid)).clients).sort()).toEqual(['c1', 'c3', 'c4']);
      });
      // By age: an entry last seen 401 days ago goes when a new client is recorded.
      await engine.admin((q) =>
        q.rows(
          `update public.user_databases
              set clients = jsonb_set(clients, '{c1,1}', to_jsonb(extract(epoch from now() - interval '401 days')::bigint))
            where user_id = $1`,
          [uid],
        ),
      );
      t = (await stored(uid)).updated_at;
      // (an existing client's write does not prune)
      t = (await patch(uid, ops, t, 'c3', 2)).updated_at;
      expect(Object.keys((await stored(uid)).clients).sort()).toEqual(['c1', 'c3', 'c4']);
      await patch(uid, ops, t, 'c5', 1);
      const clients = (await stored(uid)).clients;
      expect(Object.keys(clients).sort()).toEqual(['c3', 'c4', 'c5']);
      expect(clients.c3).toEqual([2, expect.any(Number)]);
      // A retry of a client still recorded is still not applied twice.
      expect((await patch(uid, ops, t, 'c3', 2)).applied).toBe(false);
    });

    it('counts clients in the size limit', async () => {
      const { uid, token } = await userWithProjects();
      const docBytes = await engine.admin((q) =>
        q.one<number>('select pg_column_size(db)::int from public.user_databases where user_id = $1', [uid]),
      );
      await withSettings(redefine('max_bytes', 'bigint', `${docBytes + 200}::bigint`), async () => {
        let t = token;
        let err: SqlError | undefined;
        for (let i = 0; i < 20 && err === undefined; i++) {
          try {
            t = (await patch(uid, [], t, `client-${i}-${'x'.repeat(100)}`, 1)).updated_at;
          } catch (e) {
            err = { code: String((e as { code?: unknown }).code), message: String(e) };
          }
        }
        expect(err?.code).toBe('PT413');
        expect(err?.message).toMatch(/client bookkeeping/);
      });
    });
  });

  // The patch engine on long batches (the overlay) ---------------------------------------

  describe('userdb.apply_patch on batches of many ops outside the rows', () => {
    const applySql = (doc: unknown, ops: unknown) =>
      engine.admin((q) =>
        q.one<CompactDoc>('select userdb.apply_patch($1::jsonb, $2::jsonb)', [
          JSON.stringify(doc),
          JSON.stringify(ops),
        ]),
      );
    const opIndexOf = (e: unknown) => {
      const m = /\bop (\d+) \(/.exec(String((e as { message?: unknown }).message));
      return m ? Number(m[1]) : undefined;
    };
    const base = (): CompactDoc =>
      ({
        version: 1,
        tables: {
          projects: structuredClone({ ...PROJECTS, rows: PROJECTS.rows.slice(0, 4) }),
          t2: { schema: { fields: [], primaryKey: [] }, rows: [['a'], ['b']] },
        },
        x: { k: 1, o: { n: [1, 2] } },
        list: [1, { a: 1 }, [2]],
      }) as unknown as CompactDoc;

    it('matches applyCompact (fuzz, 10 to 33 ops, most of them outside the rows)', async () => {
      const seg = fc.constantFrom(
        'version',
        'tables',
        'x',
        'list',
        'projects',
        't2',
        'schema',
        'rows',
        'k',
        'o',
        'n',
        'a',
        '0',
        '1',
        '2',
        '3',
        '-',
        'new',
        '',
        'a/b',
      );
      const esc = (t: string) => t.replace(/~/g, '~0').replace(/\//g, '~1');
      const known = fc.constantFrom(
        ['version'],
        ['x', 'k'],
        ['x', 'o'],
        ['x', 'o', 'n', '0'],
        ['x', 'o', 'n', '-'],
        ['x', 'new'],
        ['x', 'a/b'],
        ['tables', 't2'],
        ['tables', 't2', 'rows', '0'],
        ['tables', 'new'],
        ['tables', 'projects', 'schema', 'primaryKey'],
        ['list', '0'],
        ['list', '1', 'a'],
        ['list', '-'],
        ['new'],
        ['x'],
      );
      const path: fc.Arbitrary<string[]> = fc.oneof(
        { weight: 8, arbitrary: known.map((p) => [...p]) },
        { weight: 1, arbitrary: fc.array(seg, { minLength: 1, maxLength: 2 }) },
        { weight: 1, arbitrary: fc.array(seg, { minLength: 3, maxLength: 5 }) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(
              fc.constantFrom('projects', 't2', 'nope'),
              fc.constantFrom('0', '1', '2', '-'),
              fc.option(fc.constantFrom('0', '1')),
            )
            .map(([t, r, c]) => ['tables', t, 'rows', r, ...(c === null ? [] : [c])]),
        },
      );
      const value = fc.constantFrom<Json>(1, 'v', null, [], {}, { k: 2 }, [1, 2], { schema: {}, rows: [] }, [
        'r',
        'R',
      ]);
      const op = fc
        .record({
          op: fc.constantFrom('add', 'add', 'add', 'remove', 'replace', 'replace', 'test'),
          path,
          value,
        })
        .map(({ op, path, value }) =>
          op === 'remove'
            ? { op, path: `/${path.map(esc).join('/')}` }
            : { op, path: `/${path.map(esc).join('/')}`, value },
        );
      let applied = 0;
      let failed = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), async (ops) => {
          // (9 tests of /version first: the batch takes the overlay)
          const all = [
            ...Array.from({ length: 9 }, () => ({ op: 'test', path: '/version', value: 1 })),
            ...ops,
          ];
          let expected: CompactDoc | undefined;
          let expectedErr: number | undefined;
          try {
            expected = applyCompact(base(), all as PatchOp[]);
          } catch (e) {
            expectedErr = opIndexOf(e);
          }
          if (expectedErr === undefined) {
            applied++;
            expect(await applySql(base(), all)).toEqual(expected);
          } else {
            failed++;
            const err = await sqlError(applySql(base(), all));
            expect(err.code).toBe('22023');
            expect(opIndexOf(err)).toBe(expectedErr);
          }
        }),
        { numRuns: 400, seed: 20261201 },
      );
      expect(applied).toBeGreaterThan(20);
      expect(failed).toBeGreaterThan(20);
    });

    it('merges touched members before a write of their parent, and forgets them after it', async () => {
      const pad = Array.from({ length: 9 }, (): PatchOp => ({ op: 'test', path: '/version', value: 1 }));
      const cases: PatchOp[][] = [
        [
          { op: 'remove', path: '/x/k' },
          { op: 'test', path: '/x', value: { o: { n: [1, 2] } } },
        ],
        [
          { op: 'add', path: '/x/z', value: 1 },
          { op: 'replace', path: '/x', value: { q: 1 } },
          { op: 'add', path: '/x/w', value: 2 },
        ],
        [
          { op: 'add', path: '/x/z', value: 1 },
          { op: 'replace', path: '/x', value: { q: 1 } },
          { op: 'test', path: '/x/z', value: 1 },
        ],
        [
          { op: 'replace', path: '/tables/projects/rows/0/1', value: 'a' },
          { op: 'replace', path: '/tables/projects/rows/1/1', value: 'b' },
          { op: 'replace', path: '/tables/projects/rows/2/1', value: 'c' },
          { op: 'add', path: '/tables/projects/schema/x', value: 1 },
          { op: 'remove', path: '/tables/projects/rows/0' },
          { op: 'remove', path: '/tables/projects/rows/0' },
          { op: 'remove', path: '/tables/projects/rows/0' },
          { op: 'test', path: '/tables', value: null },
        ],
      ];
      for (const ops of cases) {
        const all = [...pad, ...ops];
        let expected: CompactDoc | undefined;
        try {
          expected = applyCompact(base(), all);
        } catch (e) {
          expect(opIndexOf(await sqlError(applySql(base(), all))), JSON.stringify(ops)).toBe(opIndexOf(e));
          continue;
        }
        expect(await applySql(base(), all), JSON.stringify(ops)).toEqual(expected);
      }
    });

    it('applies 5,000 replaces of /version and 2,000 new members as applyCompact does', async () => {
      const ops: PatchOp[] = [
        ...Array.from({ length: 5000 }, (_, i): PatchOp => ({ op: 'replace', path: '/version', value: i })),
        ...Array.from({ length: 2000 }, (_, i): PatchOp => ({ op: 'add', path: `/x/m${i}`, value: [i] })),
        ...Array.from({ length: 500 }, (_, i): PatchOp => ({ op: 'remove', path: `/x/m${i * 2}` })),
        { op: 'add', path: '/tables/projects/rows/-', value: ['p-new', 'New'] },
        { op: 'replace', path: '/tables/projects/rows/0/1', value: 'Zero' },
        { op: 'replace', path: '/tables/projects/rows/1/1', value: 'One' },
      ];
      expect(await applySql(base(), ops)).toEqual(applyCompact(base(), ops));
    });
  });

  // Upgrade -----------------------------------------------------------------------------

  describe('upgrade from the first migration, with data', () => {
    it('keeps documents and tokens; old calls and new calls work', async () => {
      const [bootstrap, first, ...rest] = schemaScripts();
      expect(rest.length).toBeGreaterThan(0);
      const old = await factory.open([bootstrap!, first!]);
      const uid = randomUUID();
      let before: { db: unknown; updated_at: string; clients: unknown };
      let oldToken: string;
      try {
        await old.admin((q) =>
          q.rows(`insert into auth.users (id, aud, role) values ($1, 'authenticated', 'authenticated')`, [
            uid,
          ]),
        );
        await old.asUser(uid, (q) => q.one('select public.userdb_init()'));
        await old.asUser(uid, (q) =>
          q.one(`select public.userdb_set('{tables,projects}', $1::jsonb)`, [JSON.stringify(PROJECTS)]),
        );
        const t = await old.asUser(uid, (q) => q.one<{ updated_at: string }>('select public.userdb_pull()'));
        const r = await old.asUser(uid, (q) =>
          q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
            JSON.stringify([{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'old client' }]),
            t.updated_at,
            'legacy',
            7,
          ]),
        );
        oldToken = r.updated_at;
        before = (
          await old.admin((q) =>
            q.rows<{ db: unknown; updated_at: string; clients: unknown }>(
              `select db, to_json(updated_at) #>> '{}' as updated_at, clients from public.user_databases`,
            ),
          )
        )[0]!;
        expect(before.clients).toEqual({ legacy: 7 });
        // The new migration, on the same database.
        for (const script of rest) await old.admin((q) => q.exec(script));

        const after = (
          await old.admin((q) =>
            q.rows(
              `select db, to_json(updated_at) #>> '{}' as updated_at, clients from public.user_databases`,
            ),
          )
        )[0];
        expect(after).toEqual(before);
        // Old calls: the one-argument pull, a retry of the legacy batch, a new patch.
        const oldPull = await old.asUser(uid, (q) =>
          q.one<{ db: unknown; updated_at: string } | null>('select public.userdb_pull($1::timestamptz)', [
            null,
          ]),
        );
        expect(oldPull).toEqual({ db: before.db, updated_at: oldToken });
        expect(
          await old.asUser(uid, (q) => q.one('select public.userdb_pull($1::timestamptz)', [oldToken])),
        ).toBeNull();
        const retry = await old.asUser(uid, (q) =>
          q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
            JSON.stringify([{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'old client' }]),
            t.updated_at,
            'legacy',
            7,
          ]),
        );
        expect(retry).toEqual({ applied: false, updated_at: oldToken });
        const next = await old.asUser(uid, (q) =>
          q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
            JSON.stringify([{ op: 'replace', path: '/tables/projects/rows/1/1', value: 'after upgrade' }]),
            oldToken,
            'legacy',
            8,
          ]),
        );
        expect(next.applied).toBe(true);
        const publication = await old.admin((q) =>
          q.one<number>(
            `select count(*)::int from pg_publication_tables
              where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'user_databases'`,
          ),
        );
        expect(publication).toBe(1);
        // New calls: a delta from the last pre-upgrade token (logged since the upgrade)...
        const delta = await old.asUser(uid, (q) =>
          q.one<Pulled>('select public.userdb_pull($1::timestamptz, true)', [oldToken]),
        );
        expect(delta).toEqual({
          changes: [
            {
              before: oldToken,
              after: next.updated_at,
              ops: [{ op: 'replace', path: '/tables/projects/rows/1/1', value: 'after upgrade' }],
              client_id: 'legacy',
              batch_seq: 8,
            },
          ],
          updated_at: next.updated_at,
        });
        // ...and the document from before it (never logged).
        const whole = await old.asUser(uid, (q) =>
          q.one<Pulled>('select public.userdb_pull($1::timestamptz, true)', [t.updated_at]),
        );
        expect(whole !== null && 'db' in whole).toBe(true);
        // The one-argument function is gone (no ambiguity for PostgREST).
        const pulls = await old.admin((q) =>
          q.rows<{ sig: string }>(
            `select oid::regprocedure::text as sig from pg_proc where proname = 'userdb_pull'`,
          ),
        );
        expect(pulls).toEqual([{ sig: 'userdb_pull(timestamp with time zone,boolean)' }]);
      } finally {
        await old.close();
      }
    });

    it('applies where the realtime schema does not exist: changes are logged, not broadcast', async () => {
      const [bootstrap, ...migrations] = schemaScripts();
      const bare = await factory.open([bootstrap!, 'drop schema realtime cascade', ...migrations]);
      try {
        const uid = randomUUID();
        await bare.admin((q) => q.rows(`insert into auth.users (id) values ($1)`, [uid]));
        const t0 = (
          await bare.asUser(uid, (q) => q.one<{ updated_at: string }>('select public.userdb_init()'))
        ).updated_at;
        await bare.asUser(uid, (q) =>
          q.one(
            `select public.userdb_patch('[{"op":"replace","path":"/version","value":1}]', $1::timestamptz, 'c', 1)`,
            [t0],
          ),
        );
        const log = await bare.admin((q) =>
          q.rows(`select ops from userdb.changes where user_id = $1`, [uid]),
        );
        expect(log).toEqual([{ ops: [{ op: 'replace', path: '/version', value: 1 }] }]);
      } finally {
        await bare.close();
      }
    });
  });
});
