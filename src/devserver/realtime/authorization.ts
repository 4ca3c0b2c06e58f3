/**
 * Who may do what on a Realtime channel, decided by the database as hosted Realtime
 * decides it:
 * - a token's role must be one PostgREST's login role `authenticator` can switch to (the
 *   rule the RPC routes apply), for every channel;
 * - a private channel join (`config.private: true`) is allowed when the joining user can
 *   select a probe row of `realtime.messages` for the channel's topic: the row is inserted,
 *   then `role`, `request.jwt.claims` and `realtime.topic` are set and it is selected, all in
 *   a transaction that is rolled back (Realtime's `Authorization.get_read_authorizations`);
 * - a client broadcast on a private channel is allowed when the user can insert such a row
 *   (`get_write_authorizations`).
 *
 * @example
 * ```ts
 * const auth = new ChannelAuthorization(db);
 * if ((await auth.roleAccess('postgres')) !== 'allowed') refuse();
 * const read = await auth.canRead({ topic: 'userdb:' + uid, role: 'authenticated', claims });
 * ```
 */
import { randomUUID } from 'node:crypto';
import { type Database, isPostgresError, type Queryable } from '../database.js';
import type { JwtClaims } from '../jwt.js';

/** The identity a check runs as. */
export interface ChannelIdentity {
  /** The channel's topic without the `realtime:` prefix (what `realtime.topic()` returns). */
  topic: string;
  role: string;
  claims: JwtClaims;
}

/** How long a role's grant to `authenticator` is trusted without a re-read. */
const ROLE_TTL_MS = 2000;

class Rollback<T> {
  constructor(readonly value: T) {}
}

/** Runs `fn` in a transaction that is always rolled back, and returns what it returned. */
async function rolledBack<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  try {
    await db.transaction(async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (outcome) {
    if (outcome instanceof Rollback) return outcome.value as T;
    throw outcome;
  }
  throw new Error('unreachable');
}

async function setConnConfig(tx: Queryable, identity: ChannelIdentity): Promise<void> {
  const sub = typeof identity.claims.sub === 'string' ? identity.claims.sub : '';
  await tx.query(
    `select set_config('role', $1, true), set_config('realtime.topic', $2, true),
       set_config('request.jwt.claims', $3, true), set_config('request.jwt.claim.sub', $4, true),
       set_config('request.jwt.claim.role', $1, true), set_config('request.headers', '{}', true)`,
    [identity.role, identity.topic, JSON.stringify(identity.claims), sub],
  );
}

/** Role and RLS checks for channel joins and client broadcasts. */
export class ChannelAuthorization {
  readonly #db: Database;
  readonly #roles = new Map<string, { access: 'allowed' | 'denied' | 'missing'; at: number }>();

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Whether `authenticator` may switch to `role` (`'missing'`: no such role), as the RPC
   * routes decide; a database without an `authenticator` role allows every role.
   */
  async roleAccess(role: string): Promise<'allowed' | 'denied' | 'missing'> {
    const cached = this.#roles.get(role);
    if (cached !== undefined && Date.now() - cached.at < ROLE_TTL_MS) return cached.access;
    const rows = await this.#db.query<{ access: 'allowed' | 'denied' | 'missing' }>(
      `select case
         when not exists (select 1 from pg_catalog.pg_roles where rolname = $1) then 'missing'
         when not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then 'allowed'
         when pg_catalog.pg_has_role('authenticator', $1, 'MEMBER') then 'allowed'
         else 'denied' end as access`,
      [role],
    );
    const access = rows[0]?.access ?? 'missing';
    this.#roles.set(role, { access, at: Date.now() });
    return access;
  }

  /**
   * Whether the identity may read the channel's broadcasts: a probe row of
   * `realtime.messages` (extension `broadcast`, the channel's topic) is visible to it.
   * Any error (a policy that fails, a role that cannot be set) means no.
   */
  async canRead(identity: ChannelIdentity): Promise<boolean> {
    try {
      return await rolledBack(this.#db, async (tx) => {
        const id = randomUUID();
        await tx.query(`insert into realtime.messages (id, topic, extension) values ($1, $2, 'broadcast')`, [
          id,
          identity.topic,
        ]);
        await setConnConfig(tx, identity);
        const rows = await tx.query('select id from realtime.messages where id = $1', [id]);
        return rows.length > 0;
      });
    } catch {
      return false;
    }
  }

  /**
   * Whether the identity may send broadcasts on the channel: inserting a row of
   * `realtime.messages` (extension `broadcast`, the channel's topic) as it passes the
   * insert policies. Denied (42501) or any other error means no.
   */
  async canWrite(identity: ChannelIdentity): Promise<boolean> {
    try {
      return await rolledBack(this.#db, async (tx) => {
        await setConnConfig(tx, identity);
        try {
          await tx.query(`insert into realtime.messages (topic, extension) values ($1, 'broadcast')`, [
            identity.topic,
          ]);
          return true;
        } catch (error) {
          if (isPostgresError(error)) return false;
          throw error;
        }
      });
    } catch {
      return false;
    }
  }
}
