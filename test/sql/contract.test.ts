/**
 * The server contract (supabase/migrations) on every engine: PGlite always, and the
 * PostgreSQL server at DATABASE_URL when set (required in CI).
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCompact, type CompactDoc, type Json, type PatchOp } from '../../src/doc/index.js';
import { type Engine, engines, type Queryable, schemaScripts } from './engines.js';

interface SqlError {
  code: string;
  message: string;
  detail: string | undefined;
}

/** The error a promise rejects with (fails the test when it resolves). */
async function sqlError(p: Promise<unknown>): Promise<SqlError> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown; detail?: unknown };
    return {
      code: String(err.code),
      message: String(err.message),
      detail: typeof err.detail === 'string' ? err.detail : undefined,
    };
  }
  throw new Error('expected an SQL error, got a result');
}

interface Token {
  db: CompactDoc;
  updated_at: string;
}

interface PatchResult {
  applied: boolean;
  updated_at: string;
}

/** The original two-function setup this migration upgrades (schema, policies, functions). */
const SEED_SQL = `
create table public.user_databases (
  user_id    uuid primary key references auth.users(id) on delete cascade,
  db         jsonb not null default '{"version":1,"tables":{}}',
  updated_at timestamptz not null default now()
);
alter table public.user_databases enable row level security;
create policy "own read"   on public.user_databases for select using (auth.uid() = user_id);
create policy "own write"  on public.user_databases for update using (auth.uid() = user_id);
create policy "own insert" on public.user_databases for insert with check (auth.uid() = user_id);
create index user_databases_db_gin on public.user_databases using gin (db jsonb_path_ops);
create or replace function public.userdb_init()
returns void language sql security definer as $$
  insert into public.user_databases(user_id) values (auth.uid())
  on conflict (user_id) do nothing;
$$;
create or replace function public.userdb_get(path text[])
returns jsonb language sql security definer stable as $$
  select db #> path from public.user_databases
  where user_id = auth.uid();
$$;
create or replace function public.userdb_set(path text[], value jsonb)
returns void language sql security definer as $$
  update public.user_databases
  set db = jsonb_set(db, path, value, true),
      updated_at = now()
  where user_id = auth.uid();
$$;
`;

const PROJECTS = {
  schema: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'title', type: 'string' },
      { name: 'done', type: 'boolean' },
    ],
    primaryKey: ['id'],
  },
  rows: [
    ['p1', 'One', false],
    ['p2', 'Two', true],
    ['p3', 'Three', false],
  ],
};

if (!process.env.DATABASE_URL) {
  console.warn(
    'test/sql: the PostgreSQL tests did not run (DATABASE_URL is not set); run them with DATABASE_URL=postgres://user:pass@127.0.0.1:5432/db npx vitest run test/sql (a superuser URL: each run creates and drops its own database)',
  );
}

describe('CI runs the contract on a real server', () => {
  it('has DATABASE_URL whenever CI is set', () => {
    if (process.env.CI) expect(process.env.DATABASE_URL, 'CI must provide a PostgreSQL server').toBeTruthy();
    else expect(true).toBe(true);
  });
});

describe.each(engines().map((f) => [f.name, f] as const))('userdb contract on %s', (_name, factory) => {
  let engine: Engine;

  beforeAll(async () => {
    engine = await factory.open();
  });
  afterAll(async () => {
    await engine?.close();
  });

  // Helpers -------------------------------------------------------------------------

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

  const init = (uid: string) => engine.asUser(uid, (q) => q.one<Token>('select public.userdb_init()'));

  const patch = (
    uid: string,
    ops: unknown,
    expected: string | null,
    clientId: string | null,
    seq: number | null,
  ) =>
    engine.asUser(uid, (q) =>
      q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
        JSON.stringify(ops),
        expected,
        clientId,
        seq,
      ]),
    );

  const set = (uid: string, path: string[], value: unknown, expected?: string) =>
    engine.asUser(uid, (q) =>
      expected === undefined
        ? q.one<string>(`select to_json(public.userdb_set($1, $2::jsonb)) #>> '{}'`, [
            path,
            JSON.stringify(value),
          ])
        : q.one<string>(`select to_json(public.userdb_set($1, $2::jsonb, $3::timestamptz)) #>> '{}'`, [
            path,
            JSON.stringify(value),
            expected,
          ]),
    );

  /** The stored row, read as the superuser. */
  const stored = (uid: string) =>
    engine.admin(async (q) => {
      const rows = await q.rows<{ db: CompactDoc; updated_at: string; clients: Record<string, number> }>(
        `select db, to_json(updated_at) #>> '{}' as updated_at, clients from public.user_databases where user_id = $1`,
        [uid],
      );
      return rows[0];
    });

  /** A user with a document holding the projects table; returns the token. */
  async function userWithProjects(): Promise<{ uid: string; token: string }> {
    const uid = await newUser();
    await init(uid);
    const token = await set(uid, ['tables', 'projects'], PROJECTS);
    return { uid, token };
  }

  const micros = (q: Queryable, ts: string) =>
    q.one<string>(`select (extract(epoch from $1::timestamptz) * 1000000)::bigint::text`, [ts]).then(BigInt);

  // Schema ---------------------------------------------------------------------------

  describe('schema', () => {
    it('the bootstrap and the migrations can run again without changing data', async () => {
      const { uid } = await userWithProjects();
      const before = await stored(uid);
      await engine.reapplySchema();
      expect(await stored(uid)).toEqual(before);
      expect((await init(uid)).db).toEqual(before?.db);
    });

    it('auth.uid(), auth.role(), auth.email() and auth.jwt() read request.jwt.claims like Supabase', async () => {
      const uid = randomUUID();
      const claims = { sub: uid, role: 'authenticated', email: 'a@example.test', aal: 'aal1' };
      const got = await engine.asUser(
        uid,
        (q) =>
          q.rows(
            'select auth.uid()::text as uid, auth.role() as role, auth.email() as email, auth.jwt() as jwt',
          ),
        { claims },
      );
      expect(got[0]).toEqual({ uid, role: 'authenticated', email: 'a@example.test', jwt: claims });

      const legacy = randomUUID();
      const viaLegacy = await engine.asUser(
        uid,
        async (q) => {
          await q.rows(`select set_config('request.jwt.claim.sub', $1, true)`, [legacy]);
          return q.one<string>('select auth.uid()::text');
        },
        { claims },
      );
      expect(viaLegacy).toBe(legacy);
      expect(await engine.asUser(null, (q) => q.one('select auth.uid()'), { role: 'anon' })).toBeNull();
    });

    it('has the API roles as on Supabase', async () => {
      const roles = await engine.admin((q) =>
        q.rows<{ rolname: string; rolcanlogin: boolean; rolinherit: boolean; rolbypassrls: boolean }>(
          `select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles
            where rolname in ('anon', 'authenticated', 'service_role', 'authenticator') order by rolname`,
        ),
      );
      expect(roles).toEqual([
        { rolname: 'anon', rolcanlogin: false, rolinherit: false, rolbypassrls: false },
        { rolname: 'authenticated', rolcanlogin: false, rolinherit: false, rolbypassrls: false },
        { rolname: 'authenticator', rolcanlogin: true, rolinherit: false, rolbypassrls: false },
        { rolname: 'service_role', rolcanlogin: false, rolinherit: false, rolbypassrls: true },
      ]);
      const members = await engine.admin((q) =>
        q.one<boolean>(
          `select bool_and(pg_has_role('authenticator', r, 'member'))
             from unnest(array['anon', 'authenticated', 'service_role']) as r`,
        ),
      );
      expect(members).toBe(true);
    });

    it('publishes user_databases in supabase_realtime', async () => {
      const n = await engine.admin((q) =>
        q.one<number>(
          `select count(*)::int from pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'user_databases'`,
        ),
      );
      expect(n).toBe(1);
    });

    it('lint: every userdb function is security invoker with a fixed empty search_path (but the log trigger)', async () => {
      const fns = await engine.admin((q) =>
        q.rows<{ name: string; secdef: boolean; config: string[] | null }>(
          `select n.nspname || '.' || p.proname as name, p.prosecdef as secdef, p.proconfig as config
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where (n.nspname = 'public' and p.proname like 'userdb\\_%') or n.nspname = 'userdb'
            order by 1`,
        ),
      );
      const names = fns.map((f) => f.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'public.userdb_init',
          'public.userdb_get',
          'public.userdb_set',
          'public.userdb_patch',
          'public.userdb_pull',
        ]),
      );
      // The one security definer: the log trigger, which writes the change log and sends
      // the broadcast (users have no insert right on either).
      const offending = fns.filter(
        (f) => (f.secdef && f.name !== 'userdb.log_change') || !(f.config ?? []).includes('search_path=""'),
      );
      expect(offending).toEqual([]);
      expect(fns.filter((f) => f.secdef).map((f) => f.name)).toEqual(['userdb.log_change']);
    });

    it('anon may execute no userdb function; authenticated and service_role may execute the API', async () => {
      const rows = await engine.admin((q) =>
        q.rows<{ name: string; anon: boolean; authenticated: boolean; service_role: boolean }>(
          `select p.oid::regprocedure::text as name,
                  has_function_privilege('anon', p.oid, 'execute') as anon,
                  has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
                  has_function_privilege('service_role', p.oid, 'execute') as service_role
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where (n.nspname = 'public' and p.proname like 'userdb\\_%') or n.nspname = 'userdb'`,
        ),
      );
      expect(rows.filter((r) => r.anon)).toEqual([]);
      const api = rows.filter((r) => r.name.startsWith('userdb_'));
      expect(api).toHaveLength(5);
      expect(api.every((r) => r.authenticated && r.service_role)).toBe(true);
    });
  });

  describe('upgrade from the original two-function setup', () => {
    it('keeps the data and the two-argument userdb_set call, and replaces the security definer functions', async () => {
      const uid = randomUUID();
      const [bootstrap, ...migrations] = schemaScripts();
      const existing = `
        insert into auth.users (id) values ('${uid}');
        insert into public.user_databases (user_id, db)
          values ('${uid}', '{"version":1,"tables":{"old":{"schema":{"fields":[],"primaryKey":[]},"rows":[["kept"]]}}}');`;
      const upgraded = await factory.open([bootstrap!, SEED_SQL, existing, ...migrations]);
      try {
        const row = await upgraded.admin((q) =>
          q.rows<{ db: CompactDoc; clients: unknown }>('select db, clients from public.user_databases'),
        );
        expect(row).toEqual([{ db: expect.objectContaining({ tables: expect.any(Object) }), clients: {} }]);
        const token = await upgraded.asUser(uid, (q) =>
          q.one<string>(
            `select to_json(public.userdb_set('{tables,old,rows}', '[["kept"],["new"]]')) #>> '{}'`,
          ),
        );
        const init = await upgraded.asUser(uid, (q) => q.one<Token>('select public.userdb_init()'));
        expect(init).toEqual({
          db: {
            version: 1,
            tables: { old: { schema: { fields: [], primaryKey: [] }, rows: [['kept'], ['new']] } },
          },
          updated_at: token,
        });
        const definers = await upgraded.admin((q) =>
          q.rows(
            `select proname from pg_proc where proname like 'userdb\\_%' and (prosecdef or proconfig is null)`,
          ),
        );
        expect(definers).toEqual([]);
        const gin = await upgraded.admin((q) =>
          q.one<number>(
            `select count(*)::int from pg_indexes where tablename = 'user_databases' and indexdef ilike '%gin%'`,
          ),
        );
        expect(gin).toBe(0);
      } finally {
        await upgraded.close();
      }
    });
  });

  // init / get / set / pull ----------------------------------------------------------

  describe('userdb_init, userdb_get, userdb_set, userdb_pull', () => {
    it('userdb_init creates the default document once and returns it with its token', async () => {
      const uid = await newUser();
      const first = await init(uid);
      expect(first.db).toEqual({ version: 1, tables: {} });
      expect(first.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/);
      expect(await init(uid)).toEqual(first);
    });

    it('userdb_get reads a path of the caller’s document', async () => {
      const { uid } = await userWithProjects();
      const rows = await engine.asUser(uid, (q) =>
        q.one('select public.userdb_get($1)', [['tables', 'projects', 'rows']]),
      );
      expect(rows).toEqual(PROJECTS.rows);
      expect(await engine.asUser(uid, (q) => q.one('select public.userdb_get($1)', [['nope']]))).toBeNull();
    });

    it('userdb_set keeps the two-argument call and returns the new token', async () => {
      const { uid, token } = await userWithProjects();
      const next = await set(uid, ['tables', 'projects', 'rows'], []);
      expect(next).not.toBe(token);
      const row = await stored(uid);
      expect(row?.updated_at).toBe(next);
      expect(row?.db.tables.projects?.rows).toEqual([]);
    });

    it('userdb_set with expected_updated_at: writes when current, PT409 with the token when stale', async () => {
      const { uid, token } = await userWithProjects();
      const next = await set(uid, ['version'], 1, token);
      const err = await sqlError(set(uid, ['version'], 2, token));
      expect(err.code).toBe('PT409');
      expect(err.detail).toBe(next);
      expect((await stored(uid))?.db.version).toBe(1);
    });

    it('userdb_set with an empty path replaces the whole document, shape-checked', async () => {
      const { uid } = await userWithProjects();
      await set(uid, [], { version: 1, tables: { t: { schema: { fields: [], primaryKey: [] }, rows: [] } } });
      expect(Object.keys((await stored(uid))?.db.tables ?? {})).toEqual(['t']);
      const before = await stored(uid);
      for (const bad of [[], { version: 1 }, { version: 1, tables: [] }, 'x']) {
        const err = await sqlError(set(uid, [], bad));
        expect(err.code).toBe('22023');
        expect(err.message).toContain('"tables"');
      }
      expect(await stored(uid)).toEqual(before);
    });

    it('writes before userdb_init answer PT404; a JWT without sub answers 42501', async () => {
      const uid = await newUser();
      expect((await sqlError(set(uid, ['version'], 1))).code).toBe('PT404');
      expect((await sqlError(patch(uid, [], null, null, null))).code).toBe('PT404');
      const noSub = await sqlError(
        engine.asUser(null, (q) => q.one('select public.userdb_init()'), { role: 'service_role' }),
      );
      expect(noSub.code).toBe('42501');
    });

    it('userdb_pull returns {db, updated_at}, or null when nothing is newer than since', async () => {
      const { uid, token } = await userWithProjects();
      const pull = (since: string | null) =>
        engine.asUser(uid, (q) => q.one<Token | null>('select public.userdb_pull($1::timestamptz)', [since]));
      const whole = await pull(null);
      expect(whole).toEqual({ db: (await stored(uid))?.db, updated_at: token });
      expect(await pull(token)).toBeNull();
      const older = await engine.admin((q) =>
        q.one<string>(`select to_json($1::timestamptz - interval '1 microsecond') #>> '{}'`, [token]),
      );
      expect((await pull(older))?.updated_at).toBe(token);
      const other = await newUser();
      expect(await engine.asUser(other, (q) => q.one('select public.userdb_pull()'))).toBeNull();
    });
  });

  // The concurrency token -------------------------------------------------------------

  describe('updated_at', () => {
    it('strictly increases over 1,000 rapid writes in one transaction', async () => {
      const uid = await newUser();
      await init(uid);
      const stamps = await engine.asUser(uid, async (q) => {
        const out: bigint[] = [];
        for (let i = 0; i < 1000; i++) {
          const ts = await q.one<string>(`select to_json(public.userdb_set('{version}', '1')) #>> '{}'`);
          out.push(await micros(q, ts));
        }
        return out;
      });
      for (let i = 1; i < stamps.length; i++) expect(stamps[i]! > stamps[i - 1]!).toBe(true);
    });

    it('strictly increases over rapid writes in separate transactions, patch and set alike', async () => {
      const { uid, token } = await userWithProjects();
      let current = token;
      let previous = await engine.admin((q) => micros(q, current));
      for (let i = 0; i < 100; i++) {
        current =
          i % 2 === 0
            ? (await patch(uid, [{ op: 'replace', path: '/version', value: 1 }], current, 'c', i + 1))
                .updated_at
            : await set(uid, ['version'], 1);
        const now = await engine.admin((q) => micros(q, current));
        expect(now > previous).toBe(true);
        previous = now;
      }
    });

    it('cannot be set by a direct update; the trigger moves it forward', async () => {
      const { uid, token } = await userWithProjects();
      const n = await engine.asUser(uid, (q) =>
        q.rows(`update public.user_databases set updated_at = '2000-01-01' where user_id = $1 returning 1`, [
          uid,
        ]),
      );
      expect(n).toHaveLength(1);
      const after = (await stored(uid))?.updated_at ?? '';
      const [a, b] = await engine.admin(async (q) => [await micros(q, token), await micros(q, after)]);
      expect(b! > a!).toBe(true);
    });
  });

  // Conflicts and exactly-once ----------------------------------------------------------

  describe('userdb_patch: conflict check and exactly-once', () => {
    it('applies a batch and returns {applied: true, updated_at}', async () => {
      const { uid, token } = await userWithProjects();
      const res = await patch(
        uid,
        [{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'Uno' }],
        token,
        'c1',
        1,
      );
      expect(res.applied).toBe(true);
      const row = await stored(uid);
      expect(res.updated_at).toBe(row?.updated_at);
      expect(row?.db.tables.projects?.rows[0]).toEqual(['p1', 'Uno', false]);
      expect(row?.clients).toEqual({ c1: [1, expect.any(Number)] });
    });

    it('a stale token raises PT409 carrying the current token and changes nothing', async () => {
      const { uid, token } = await userWithProjects();
      const moved = await set(uid, ['version'], 1);
      const before = await stored(uid);
      const err = await sqlError(
        patch(uid, [{ op: 'remove', path: '/tables/projects/rows/0' }], token, 'c1', 1),
      );
      expect(err.code).toBe('PT409');
      expect(err.detail).toBe(moved);
      expect(await stored(uid)).toEqual(before);
    });

    it('a null token always conflicts', async () => {
      const { uid, token } = await userWithProjects();
      const err = await sqlError(patch(uid, [], null, 'c1', 1));
      expect(err.code).toBe('PT409');
      expect(err.detail).toBe(token);
    });

    it('the same (client_id, batch_seq) twice applies once, even after the token moved', async () => {
      const { uid, token } = await userWithProjects();
      const ops = [{ op: 'add', path: '/tables/projects/rows/-', value: ['p4', 'Four', false] }];
      const first = await patch(uid, ops, token, 'c1', 7);
      expect(first.applied).toBe(true);
      // Another client writes: the token moves on.
      const other = await patch(
        uid,
        [{ op: 'replace', path: '/version', value: 1 }],
        first.updated_at,
        'c2',
        1,
      );
      // The retry of the first batch (its response was lost) carries the old token.
      const retry = await patch(uid, ops, token, 'c1', 7);
      expect(retry).toEqual({ applied: false, updated_at: other.updated_at });
      const row = await stored(uid);
      expect(row?.db.tables.projects?.rows.filter((r) => r[0] === 'p4')).toHaveLength(1);
      expect(row?.updated_at).toBe(other.updated_at);
      expect(row?.clients).toEqual({ c1: [7, expect.any(Number)], c2: [1, expect.any(Number)] });
    });

    it('an older batch_seq than the recorded one is not applied', async () => {
      const { uid, token } = await userWithProjects();
      const res = await patch(uid, [], token, 'c1', 5);
      const old = await patch(uid, [{ op: 'remove', path: '/tables/projects' }], res.updated_at, 'c1', 4);
      expect(old).toEqual({ applied: false, updated_at: res.updated_at });
      expect((await stored(uid))?.db.tables.projects).toBeDefined();
    });

    it('without client_id there is no deduplication; client_id without batch_seq is rejected', async () => {
      const { uid, token } = await userWithProjects();
      const ops = [{ op: 'add', path: '/tables/projects/rows/-', value: ['p9', 'Nine', false] }];
      const a = await patch(uid, ops, token, null, null);
      const b = await patch(uid, ops, a.updated_at, null, null);
      expect(b.applied).toBe(true);
      expect((await stored(uid))?.db.tables.projects?.rows).toHaveLength(5);
      expect((await stored(uid))?.clients).toEqual({});
      expect((await sqlError(patch(uid, ops, b.updated_at, 'c1', null))).code).toBe('22023');
    });

    /**
     * Runs `calls` while another connection holds the row lock of `uid`, and releases the
     * lock only once all `n` calls are waiting on a lock: every call reads the row after
     * the same moment, whatever the scheduling (no timing luck).
     */
    async function behindRowLock<T>(
      uid: string,
      n: number,
      calls: () => Promise<T>[],
    ): Promise<PromiseSettledResult<T>[]> {
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let locked!: () => void;
      const held = new Promise<void>((r) => {
        locked = r;
      });
      const holder = engine.admin(async (q) => {
        await q.rows('select 1 from public.user_databases where user_id = $1 for update', [uid]);
        locked();
        await gate;
      });
      await held;
      const running = Promise.allSettled(calls());
      for (;;) {
        const waiting = await engine.admin((q) =>
          q.one<number>(
            `select count(*)::int from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`,
          ),
        );
        if (waiting >= n) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      release();
      await holder;
      return running;
    }

    if (factory.name !== 'PGlite') {
      it('race: 20 connections with the same token, all waiting on the row lock: exactly one applies, 19 get PT409', async () => {
        const { uid, token } = await userWithProjects();
        const results = await behindRowLock(uid, 20, () =>
          Array.from({ length: 20 }, (_, i) =>
            patch(
              uid,
              [{ op: 'add', path: '/tables/projects/rows/-', value: [`r${i}`, 'racer', false] }],
              token,
              `c${i}`,
              1,
            ),
          ),
        );
        const ok = results.filter((r) => r.status === 'fulfilled');
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(ok).toHaveLength(1);
        expect(failed).toHaveLength(19);
        const winner = (ok[0] as PromiseFulfilledResult<PatchResult>).value;
        expect(winner.applied).toBe(true);
        for (const f of failed) {
          expect((f.reason as { code?: string }).code).toBe('PT409');
        }
        const rows = (await stored(uid))?.db.tables.projects?.rows ?? [];
        expect(rows.filter((r) => r[1] === 'racer')).toHaveLength(1);
        expect(rows).toHaveLength(4);
      });

      it('race: one batch sent on 5 connections at once (retries racing the original) applies once', async () => {
        const { uid, token } = await userWithProjects();
        const ops = [{ op: 'add', path: '/tables/projects/rows/-', value: ['dup', 'once', false] }];
        const settled = await behindRowLock(uid, 5, () =>
          Array.from({ length: 5 }, () => patch(uid, ops, token, 'same', 1)),
        );
        const results = settled.map((r) => {
          if (r.status === 'rejected') throw r.reason;
          return r.value;
        });
        expect(results.filter((r) => r.applied)).toHaveLength(1);
        const winner = results.find((r) => r.applied)!;
        expect(results.filter((r) => !r.applied)).toEqual(
          Array(4).fill({ applied: false, updated_at: winner.updated_at }),
        );
        const rows = (await stored(uid))?.db.tables.projects?.rows ?? [];
        expect(rows.filter((r) => r[0] === 'dup')).toHaveLength(1);
      });
    }
  });

  // Patch semantics ---------------------------------------------------------------------

  describe('userdb_patch: RFC 6902 subset', () => {
    const base = (): CompactDoc =>
      ({
        version: 1,
        tables: {
          projects: structuredClone(PROJECTS),
          'a/b~c': {
            schema: { fields: [{ name: 'x', type: 'any' }], primaryKey: ['x'] },
            rows: [[{ k: [1, 2] }]],
          },
        },
      }) as CompactDoc;

    const applySql = (doc: unknown, ops: unknown) =>
      engine.admin((q) =>
        q.one<CompactDoc>('select userdb.apply_patch($1::jsonb, $2::jsonb)', [
          JSON.stringify(doc),
          JSON.stringify(ops),
        ]),
      );

    const cases: [string, PatchOp[]][] = [
      [
        'add inserts at an array index',
        [{ op: 'add', path: '/tables/projects/rows/1', value: ['x', 'X', true] }],
      ],
      [
        'add at index = length appends',
        [{ op: 'add', path: '/tables/projects/rows/3', value: ['x', 'X', true] }],
      ],
      ['add "-" appends', [{ op: 'add', path: '/tables/projects/rows/-', value: ['x', 'X', true] }]],
      ['add sets a new member', [{ op: 'add', path: '/tables/t', value: { schema: {}, rows: [] } }]],
      ['add replaces an existing member', [{ op: 'add', path: '/version', value: 2 }]],
      [
        'remove shifts the array',
        [
          { op: 'remove', path: '/tables/projects/rows/0' },
          { op: 'test', path: '/tables/projects/rows/0/0', value: 'p2' },
        ],
      ],
      ['remove a member', [{ op: 'remove', path: '/tables/projects' }]],
      ['replace a cell', [{ op: 'replace', path: '/tables/projects/rows/2/2', value: true }]],
      ['replace a whole row', [{ op: 'replace', path: '/tables/projects/rows/2', value: ['z', 'Z', null] }]],
      [
        'test compares JSON structurally',
        [{ op: 'test', path: '/tables/a~1b~0c/rows/0/0', value: { k: [1, 2] } }],
      ],
      [
        'add appends to a nested array (index = length)',
        [{ op: 'add', path: '/tables/a~1b~0c/rows/0/0/k/2', value: 3 }],
      ],
      ['add inserts into a nested array', [{ op: 'add', path: '/tables/a~1b~0c/rows/0/0/k/0', value: 0 }]],
      ['remove from a nested array', [{ op: 'remove', path: '/tables/a~1b~0c/rows/0/0/k/0' }]],
      ['~1 and ~0 unescape', [{ op: 'replace', path: '/tables/a~1b~0c/rows/0/0/k/1', value: 3 }]],
      [
        'the member named "" ',
        [
          { op: 'add', path: '/', value: 1 },
          { op: 'remove', path: '/' },
        ],
      ],
      [
        'many row ops on two tables, interleaved, in order',
        [
          { op: 'remove', path: '/tables/projects/rows/0' },
          { op: 'add', path: '/tables/a~1b~0c/rows/0', value: ['first'] },
          { op: 'remove', path: '/tables/projects/rows/1' },
          { op: 'add', path: '/tables/a~1b~0c/rows/-', value: ['last'] },
          { op: 'add', path: '/tables/projects/rows/0', value: ['n', 'N', false] },
          { op: 'replace', path: '/tables/projects/rows/1/1', value: 'Deux' },
          { op: 'test', path: '/tables/a~1b~0c/rows/2/0', value: 'last' },
          { op: 'replace', path: '/version', value: 1 },
          { op: 'add', path: '/tables/projects/rows/2', value: ['m', 'M', true] },
          { op: 'remove', path: '/tables/a~1b~0c/rows/1' },
        ],
      ],
    ];

    it.each(cases)('%s (same result as the client’s applyCompact)', async (_label, ops) => {
      expect(await applySql(base(), ops)).toEqual(applyCompact(base(), ops));
    });

    it('applies through userdb_patch exactly as applyCompact does', async () => {
      const { uid, token } = await userWithProjects();
      const ops = cases[cases.length - 1]![1].filter((o) => !o.path.includes('a~1b'));
      const expected = applyCompact((await stored(uid))!.db, ops);
      await patch(uid, ops, token, 'c', 1);
      expect((await stored(uid))?.db).toEqual(expected);
    });

    const bad: [string, unknown, RegExp][] = [
      ['unknown op', { op: 'move', from: '/version', path: '/v' }, /unknown op/],
      ['op not a string', { op: 1, path: '/version' }, /"op" must be a string/],
      ['op not an object', 'remove', /must be an object/],
      ['path missing', { op: 'remove' }, /"path" must be a string/],
      ['value missing', { op: 'add', path: '/x' }, /"value" is missing/],
      ['whole-document path', { op: 'replace', path: '', value: {} }, /whole document/],
      ['pointer without leading slash', { op: 'remove', path: 'version' }, /must start with/],
      ['bad ~ escape', { op: 'remove', path: '/tables/a~2' }, /escape/],
      ['index out of range (remove)', { op: 'remove', path: '/tables/projects/rows/3' }, /out of range/],
      [
        'index out of range (replace)',
        { op: 'replace', path: '/tables/projects/rows/3/0', value: 1 },
        /out of range/,
      ],
      ['index out of range (add)', { op: 'add', path: '/tables/projects/rows/4', value: [] }, /out of range/],
      [
        'index with a leading zero',
        { op: 'replace', path: '/tables/projects/rows/01', value: [] },
        /not an array index/,
      ],
      ['negative index', { op: 'remove', path: '/tables/projects/rows/-1' }, /not an array index/],
      ['"-" outside add', { op: 'replace', path: '/tables/projects/rows/-', value: [] }, /only valid/],
      ['removing a missing member', { op: 'remove', path: '/tables/nope' }, /no value/],
      ['replacing a missing member', { op: 'replace', path: '/tables/nope', value: {} }, /no value/],
      ['a missing parent', { op: 'add', path: '/tables/nope/rows', value: [] }, /no value/],
      ['a scalar parent', { op: 'add', path: '/version/x', value: 1 }, /no value/],
      ['a failed test', { op: 'test', path: '/tables/projects/rows/0/1', value: 'Nope' }, /test failed/],
      ['a test of a missing path', { op: 'test', path: '/tables/projects/rows/9', value: 1 }, /out of range/],
    ];

    it.each(bad)(
      'rejects %s with 22023 naming the op; the document is unchanged',
      async (_label, op, reason) => {
        const { uid, token } = await userWithProjects();
        const before = await stored(uid);
        const ops = [{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'changed' }, op];
        const err = await sqlError(patch(uid, ops, token, 'c1', 1));
        expect(err.code).toBe('22023');
        expect(err.message).toMatch(/^userdb_patch: op 1 \(/);
        expect(err.message).toMatch(reason);
        const path = (op as { path?: unknown }).path;
        if (typeof path === 'string') expect(err.message).toContain(JSON.stringify(path));
        expect(await stored(uid)).toEqual(before);
        expect(applyCompactError(before!.db, ops as PatchOp[])).toBe(1);
      },
    );

    it('rejects ops that are not an array', async () => {
      const { uid, token } = await userWithProjects();
      const err = await sqlError(patch(uid, { op: 'remove', path: '/version' }, token, 'c1', 1));
      expect(err.code).toBe('22023');
    });

    it('names the first failing op when several fail', async () => {
      const ops = [
        { op: 'replace', path: '/tables/projects/rows/0/1', value: 'ok' },
        { op: 'add', path: '/tables/a~1b~0c/rows/-', value: ['ok'] },
        { op: 'remove', path: '/tables/a~1b~0c/rows/0' },
        { op: 'remove', path: '/tables/projects/rows/7' },
        { op: 'remove', path: '/tables/a~1b~0c/rows/9' },
        { op: 'replace', path: '/tables/projects/rows/1/1', value: 'ok' },
        { op: 'move', path: '/x' },
      ];
      const err = await sqlError(applySql(base(), ops));
      expect(err.message).toMatch(/^userdb_patch: op 3 \(/);
      expect(applyCompactError(base(), ops as PatchOp[])).toBe(3);
    });

    it('re-checks the shape after applying', async () => {
      const { uid, token } = await userWithProjects();
      for (const ops of [
        [{ op: 'remove', path: '/tables' }],
        [{ op: 'replace', path: '/tables', value: [] }],
      ]) {
        const err = await sqlError(patch(uid, ops, token, null, null));
        expect(err.code).toBe('22023');
        expect(err.message).toContain('"tables"');
      }
    });

    it('matches applyCompact on random patches (fuzz)', async () => {
      const names = ['projects', 'a/b~c', 'x', '', '__proto__', '0', '-1'];
      const seg = fc.oneof(
        fc.constantFrom('0', '1', '2', '3', '-', '01', '-1', 'rows', 'schema', 'tables', 'k', ''),
        fc.nat({ max: 5 }).map(String),
      );
      const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
      const rowPath = fc
        .tuple(
          fc.constantFrom(...names),
          fc.oneof(fc.nat({ max: 4 }).map(String), fc.constant('-')),
          fc.option(fc.nat({ max: 3 })),
        )
        .map(([t, i, f]) => `/tables/${esc(t)}/rows/${i}${f === null ? '' : `/${f}`}`);
      const anyPath = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => `/${s.map(esc).join('/')}`);
      const value = fc.oneof(
        fc.constantFrom<Json>(null, true, 1, 'v', 'p1', []),
        fc.array(fc.oneof(fc.string({ maxLength: 2 }), fc.integer({ min: -2, max: 2 }), fc.boolean()), {
          maxLength: 3,
        }),
        fc.constant<Json>({ schema: { fields: [], primaryKey: [] }, rows: [['q']] }),
        fc.constant<Json>([{ rows: [['q']] }, { rows: [] }]),
      );
      const op = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            op: fc.constantFrom('add', 'remove', 'replace', 'test'),
            path: rowPath,
            value,
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            op: fc.constantFrom('add', 'remove', 'replace', 'test'),
            path: anyPath,
            value,
          }),
        },
        { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('move', 'copy'), path: rowPath }) },
      );
      const patchArb = fc.array(
        op.map((o) => (o.op === 'remove' ? { op: o.op, path: o.path } : o)),
        { minLength: 1, maxLength: 12 },
      );
      let failures = 0;
      await fc.assert(
        fc.asyncProperty(patchArb, async (ops) => {
          const doc = base();
          let expected: CompactDoc | undefined;
          let expectedErr: number | undefined;
          try {
            expected = applyCompact(doc, ops as PatchOp[]);
          } catch (e) {
            expectedErr = opIndexOf(e);
          }
          if (expectedErr === undefined) {
            expect(await applySql(doc, ops)).toEqual(expected);
          } else {
            failures++;
            const err = await sqlError(applySql(doc, ops));
            expect(err.code).toBe('22023');
            expect(opIndexOf(err)).toBe(expectedErr);
          }
        }),
        { numRuns: 300, seed: 20261127 },
      );
      expect(failures).toBeGreaterThan(0);
    });

    it('matches applyCompact on long runs of row edits over two tables (fuzz)', async () => {
      const table = (n: number): Json => ({
        schema: { fields: [], primaryKey: [] },
        rows: Array.from({ length: n }, (_, i) => [`k${i}`, i]),
      });
      const doc = { version: 1, tables: { a: table(20), b: table(12) } } as unknown as CompactDoc;
      const rowOp = fc
        .tuple(
          fc.constantFrom('a', 'b'),
          fc.constantFrom('add', 'add', 'remove', 'remove', 'remove', 'replace', 'test', 'cell'),
          fc.oneof(
            { weight: 9, arbitrary: fc.nat({ max: 16 }).map(String) },
            { weight: 1, arbitrary: fc.constant('-') },
          ),
          fc.nat({ max: 30 }),
        )
        .map(([t, kind, i, v]): PatchOp => {
          const path = `/tables/${t}/rows/${i}`;
          if (kind === 'remove') return { op: 'remove', path };
          if (kind === 'cell') return { op: 'replace', path: `${path}/1`, value: v };
          if (kind === 'test') return { op: 'test', path: `${path}/1`, value: v % 12 };
          return { op: kind as 'add' | 'replace', path, value: [`n${v}`, v] };
        });
      const patchArb = fc.array(
        fc.oneof(
          { weight: 12, arbitrary: rowOp },
          { weight: 1, arbitrary: fc.constant<PatchOp>({ op: 'replace', path: '/version', value: 1 }) },
        ),
        { minLength: 3, maxLength: 40 },
      );
      let applied = 0;
      await fc.assert(
        fc.asyncProperty(patchArb, async (ops) => {
          const expectedErr = applyCompactError(doc, ops);
          if (expectedErr === undefined) {
            applied++;
            expect(await applySql(doc, ops)).toEqual(applyCompact(doc, ops));
          } else {
            expect(opIndexOf(await sqlError(applySql(doc, ops)))).toBe(expectedErr);
          }
        }),
        { numRuns: 300, seed: 1127 },
      );
      expect(applied).toBeGreaterThan(30);
    });
  });

  // Size limit ------------------------------------------------------------------------

  describe('size limit', () => {
    it('rejects a document over 8 MiB by default with PT413', async () => {
      const { uid, token } = await userWithProjects();
      const before = await stored(uid);
      const big = 'x'.repeat(8 * 1024 * 1024 + 1);
      const err = await sqlError(patch(uid, [{ op: 'add', path: '/blob', value: big }], token, 'c1', 1));
      expect(err.code).toBe('PT413');
      expect((await sqlError(set(uid, ['blob'], big))).code).toBe('PT413');
      expect(await stored(uid)).toEqual(before);
    });

    it('follows a redefined userdb.max_bytes(), on every write path', async () => {
      const { uid, token } = await userWithProjects();
      const lowered = `create or replace function userdb.max_bytes() returns bigint language sql immutable
                       set search_path = '' as $$ select 2000::bigint $$;`;
      const blob = 'y'.repeat(3000);
      const viaPatch = await sqlError(
        engine.asUser(
          uid,
          (q) =>
            q.one('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
              JSON.stringify([{ op: 'add', path: '/blob', value: blob }]),
              token,
              'c1',
              1,
            ]),
          { before: lowered, rollback: true },
        ),
      );
      expect(viaPatch.code).toBe('PT413');
      const direct = await sqlError(
        engine.asUser(
          uid,
          (q) =>
            q.rows(
              `update public.user_databases set db = jsonb_set(db, '{blob}', to_jsonb($1::text)) where user_id = $2`,
              [blob, uid],
            ),
          { before: lowered, rollback: true },
        ),
      );
      expect(direct.code).toBe('PT413');
      // The same write is fine under the default limit.
      const ok = await patch(uid, [{ op: 'add', path: '/blob', value: blob }], token, 'c1', 1);
      expect(ok.applied).toBe(true);
    });

    it('a direct write cannot store a document of the wrong shape', async () => {
      const { uid } = await userWithProjects();
      const err = await sqlError(
        engine.asUser(uid, (q) =>
          q.rows(`update public.user_databases set db = '{"version":1}' where user_id = $1`, [uid]),
        ),
      );
      expect(err.code).toBe('23514');
    });
  });

  // Row level security ------------------------------------------------------------------

  describe('row level security', () => {
    it('user A cannot read, insert, update or delete B’s row through the table', async () => {
      const a = await userWithProjects();
      const b = await userWithProjects();
      const bBefore = await stored(b.uid);

      const visible = await engine.asUser(a.uid, (q) => q.rows('select user_id from public.user_databases'));
      expect(visible).toEqual([{ user_id: a.uid }]);

      const updated = await engine.asUser(a.uid, (q) =>
        q.rows(
          `update public.user_databases set db = '{"version":1,"tables":{}}' where user_id = $1 returning 1`,
          [b.uid],
        ),
      );
      expect(updated).toEqual([]);

      const stolen = await sqlError(
        engine.asUser(a.uid, (q) =>
          q.rows(`update public.user_databases set user_id = $1 where user_id = $2`, [b.uid, a.uid]),
        ),
      );
      expect(stolen.code).toBe('42501');

      const other = await newUser();
      const inserted = await sqlError(
        engine.asUser(a.uid, (q) =>
          q.rows('insert into public.user_databases (user_id) values ($1)', [other]),
        ),
      );
      expect(inserted.code).toBe('42501');

      const deleted = await sqlError(
        engine.asUser(a.uid, (q) => q.rows('delete from public.user_databases where user_id = $1', [b.uid])),
      );
      expect(deleted.code).toBe('42501');
      const truncated = await sqlError(engine.asUser(a.uid, (q) => q.exec('truncate public.user_databases')));
      expect(truncated.code).toBe('42501');

      expect(await stored(b.uid)).toEqual(bBefore);
    });

    it('user A cannot read or change B’s document through any function', async () => {
      const a = await userWithProjects();
      const b = await newUser();
      await init(b);
      await set(b, ['tables', 'secret'], { schema: { fields: [], primaryKey: [] }, rows: [['s']] });
      const bBefore = await stored(b);

      const got = await engine.asUser(a.uid, (q) =>
        q.one('select public.userdb_get($1)', [['tables', 'secret']]),
      );
      expect(got).toBeNull();
      const pulled = await engine.asUser(a.uid, (q) => q.one<Token>('select public.userdb_pull()'));
      expect(pulled.db.tables.secret).toBeUndefined();
      await set(a.uid, ['tables', 'secret'], { schema: { fields: [], primaryKey: [] }, rows: [] });
      await patch(
        a.uid,
        [{ op: 'remove', path: '/tables/secret' }],
        (await stored(a.uid))!.updated_at,
        'c',
        1,
      );
      expect(await stored(b)).toEqual(bBefore);
    });

    it('anon can call nothing and read nothing', async () => {
      const { uid } = await userWithProjects();
      const calls = [
        'select public.userdb_init()',
        `select public.userdb_get('{}')`,
        `select public.userdb_set('{version}', '1')`,
        `select public.userdb_set('{version}', '1', now())`,
        `select public.userdb_patch('[]', now(), 'c', 1)`,
        'select public.userdb_pull()',
        'select public.userdb_pull(now())',
        'select * from public.user_databases',
      ];
      for (const sql of calls) {
        const err = await sqlError(
          engine.asUser(null, (q) => q.rows(sql), { role: 'anon', claims: { sub: uid, role: 'anon' } }),
        );
        expect(err.code, sql).toBe('42501');
      }
    });

    it('service_role bypasses RLS and can call the functions for a user', async () => {
      const a = await userWithProjects();
      const b = await userWithProjects();
      const ids = await engine.asUser(
        null,
        (q) => q.rows<{ user_id: string }>('select user_id from public.user_databases'),
        {
          role: 'service_role',
        },
      );
      expect(ids.map((r) => r.user_id)).toEqual(expect.arrayContaining([a.uid, b.uid]));
      const res = await engine.asUser(
        b.uid,
        (q) =>
          q.one<PatchResult>('select public.userdb_patch($1::jsonb, $2::timestamptz, $3, $4)', [
            JSON.stringify([{ op: 'replace', path: '/version', value: 1 }]),
            b.token,
            'admin',
            1,
          ]),
        { role: 'service_role' },
      );
      expect(res.applied).toBe(true);
    });

    it('deleting the auth user deletes the document', async () => {
      const { uid } = await userWithProjects();
      await engine.admin((q) => q.rows('delete from auth.users where id = $1', [uid]));
      expect(await stored(uid)).toBeUndefined();
    });
  });
});

/** The op index named by a client or server patch error. */
function opIndexOf(e: unknown): number | undefined {
  const m = /\bop (\d+) \(/.exec(String((e as { message?: unknown }).message));
  return m ? Number(m[1]) : undefined;
}

/** The op index at which applyCompact fails, or undefined when it applies. */
function applyCompactError(doc: CompactDoc, ops: PatchOp[]): number | undefined {
  try {
    applyCompact(doc, ops);
    return undefined;
  } catch (e) {
    return opIndexOf(e);
  }
}
