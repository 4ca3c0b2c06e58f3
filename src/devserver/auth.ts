/**
 * The GoTrue subset supabase-js needs: email+password sign-up and sign-in,
 * anonymous sign-in, refresh-token rotation, the current user and sign-out. Users
 * live in `auth.users`, sessions in `auth.sessions`, refresh tokens in
 * `auth.refresh_tokens`, as GoTrue keeps them; passwords are hashed with scrypt.
 *
 * @example
 * ```ts
 * const auth = new AuthService({ db, jwtSecret, issuer: () => 'http://127.0.0.1:54321/auth/v1', accessTokenTtl: 3600 });
 * await auth.handle(req, res, '/signup', url);
 * ```
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Database, isPostgresError, type Queryable } from './database.js';
import {
  BodyTooLargeError,
  bearerToken,
  DEFAULT_MAX_JSON_DEPTH,
  jsonTooDeep,
  readBody,
  send,
  sendJson,
} from './http.js';
import { type JwtClaims, signJwt, verifyJwt } from './jwt.js';

/** Options of {@link AuthService}. */
export interface AuthOptions {
  db: Database;
  jwtSecret: string;
  /** The `iss` claim of issued access tokens (read at each issue: the port may be chosen late). */
  issuer: () => string;
  /** Access-token lifetime in seconds. */
  accessTokenTtl: number;
  maxBodyBytes: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body (default 512). */
  maxJsonDepth?: number;
  /** Whether `signInAnonymously` is allowed (default on, as `supabase start` allows it when enabled). */
  anonymousSignIns?: boolean;
}

const API_VERSION_HEADER = 'x-supabase-api-version';
/** GoTrue lets a just-rotated refresh token be used again for this long (seconds). */
const REFRESH_REUSE_INTERVAL = 10;
const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

class AuthHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function scrypt(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keylen: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/**
 * Hashes a password as `$scrypt$N$r$p$salt$hash` (base64).
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse');
 * await verifyPassword('correct horse', stored); // true
 * ```
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return `$scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Checks a password against a {@link hashPassword} hash.
 *
 * @example
 * ```ts
 * if (!(await verifyPassword(input, stored))) throw new Error('wrong password');
 * ```
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 7 || parts[1] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[2]), Number(parts[3]), Number(parts[4])];
  const salt = Buffer.from(parts[5] ?? '', 'base64');
  const expected = Buffer.from(parts[6] ?? '', 'base64');
  const key = await scrypt(password, salt, N, r, p, expected.length);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

const USER_JSON = `
  json_build_object(
    'id', u.id,
    'aud', coalesce(u.aud, ''),
    'role', coalesce(u.role, ''),
    'email', coalesce(u.email, ''),
    'email_confirmed_at', to_char(u.email_confirmed_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'phone', coalesce(u.phone, ''),
    'confirmed_at', to_char(u.confirmed_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'last_sign_in_at', to_char(u.last_sign_in_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb),
    'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
    'identities', case when u.is_anonymous or u.email is null then '[]'::json else json_build_array(json_build_object(
      'identity_id', u.id,
      'id', u.id,
      'user_id', u.id,
      'identity_data', json_build_object('email', u.email, 'email_verified', false, 'phone_verified', false, 'sub', u.id),
      'provider', 'email',
      'last_sign_in_at', to_char(u.last_sign_in_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'created_at', to_char(u.created_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'updated_at', to_char(u.updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'email', u.email
    )) end,
    'created_at', to_char(u.created_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'updated_at', to_char(u.updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'is_anonymous', u.is_anonymous
  )::text`;

type UserRow = {
  id: string;
  user: string;
};

/** A GoTrue user object (the fields the dev server fills). */
export interface AuthUser {
  id: string;
  aud: string;
  role: string;
  email: string;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  is_anonymous: boolean;
  [field: string]: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** GoTrue's limit (auth.users.email is varchar(255)). */
const MAX_EMAIL_BYTES = 255;

/** The `/auth/v1` endpoints. */
export class AuthService {
  readonly #o: AuthOptions;

  constructor(options: AuthOptions) {
    this.#o = options;
  }

  /**
   * Handles one request under `/auth/v1`; `path` is the part after it.
   *
   * @example
   * ```ts
   * await auth.handle(req, res, '/token', url);
   * ```
   */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    const versioned = typeof req.headers[API_VERSION_HEADER] === 'string';
    const versionHeaders: Record<string, string> = versioned
      ? { 'X-Supabase-Api-Version': '2024-01-01' }
      : {};
    try {
      const method = req.method ?? 'GET';
      if (path === '/health' && method === 'GET') {
        sendJson(req, res, 200, {
          version: 'userdb-dev',
          name: 'GoTrue',
          description: 'userdb dev server auth',
        });
      } else if (path === '/settings' && method === 'GET') {
        sendJson(req, res, 200, {
          external: { email: true, phone: false, anonymous_users: this.#o.anonymousSignIns !== false },
          disable_signup: false,
          mailer_autoconfirm: true,
          phone_autoconfirm: false,
          sms_provider: '',
          saml_enabled: false,
        });
      } else if (path === '/signup' && method === 'POST') {
        sendJson(req, res, 200, await this.#signup(await this.#json(req)), versionHeaders);
      } else if (path === '/token' && method === 'POST') {
        const grant = url.searchParams.get('grant_type');
        const body = await this.#json(req);
        if (grant === 'password') sendJson(req, res, 200, await this.#password(body), versionHeaders);
        else if (grant === 'refresh_token')
          sendJson(req, res, 200, await this.#refresh(body), versionHeaders);
        else throw new AuthHttpError(400, 'validation_failed', 'unsupported_grant_type');
      } else if (path === '/user' && method === 'GET') {
        const { userId } = await this.#requireUser(req);
        sendJson(req, res, 200, await this.#loadUser(this.#o.db, userId), versionHeaders);
      } else if (path === '/user' && method === 'PUT') {
        const { userId } = await this.#requireUser(req);
        sendJson(req, res, 200, await this.#updateUser(userId, await this.#json(req)), versionHeaders);
      } else if (path === '/logout' && method === 'POST') {
        await this.#logout(req, url.searchParams.get('scope') ?? 'global');
        send(req, res, 204, undefined, versionHeaders);
      } else {
        throw new AuthHttpError(404, 'not_found', 'Not Found');
      }
    } catch (error) {
      if (error instanceof AuthHttpError) {
        const body = versioned
          ? { code: error.errorCode, message: error.message, ...error.extra }
          : { code: error.status, error_code: error.errorCode, msg: error.message, ...error.extra };
        sendJson(req, res, error.status, body, versionHeaders);
        return;
      }
      if (error instanceof BodyTooLargeError) {
        sendJson(
          req,
          res,
          413,
          { code: 413, error_code: 'request_too_large', msg: error.message },
          error.drained ? versionHeaders : { ...versionHeaders, Connection: 'close' },
        );
        return;
      }
      throw error;
    }
  }

  async #json(req: IncomingMessage): Promise<Record<string, unknown>> {
    const raw = (await readBody(req, this.#o.maxBodyBytes)).toString('utf8');
    if (raw.trim() === '') return {};
    const depth = this.#o.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    if (jsonTooDeep(raw, depth)) {
      throw new AuthHttpError(
        400,
        'bad_json',
        `Could not parse request body as JSON: nested deeper than ${depth} levels`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new AuthHttpError(400, 'bad_json', 'Could not parse request body as JSON');
    }
    if (!isRecord(parsed)) throw new AuthHttpError(400, 'bad_json', 'Could not parse request body as JSON');
    return parsed;
  }

  async #signup(body: Record<string, unknown>) {
    const data = isRecord(body.data) ? body.data : {};
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : undefined;
    if (email === '' && body.phone === undefined) {
      if (this.#o.anonymousSignIns === false) {
        throw new AuthHttpError(422, 'anonymous_provider_disabled', 'Anonymous sign-ins are disabled');
      }
      return this.#o.db.transaction(async (tx) => {
        const rows = await tx.query<{ id: string }>(
          `insert into auth.users (instance_id, id, aud, role, raw_app_meta_data, raw_user_meta_data,
             created_at, updated_at, last_sign_in_at, is_anonymous)
           values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
             '{}'::jsonb, $1::jsonb, now(), now(), now(), true)
           returning id::text`,
          [JSON.stringify(data)],
        );
        return this.#issueSession(tx, rows[0]!.id, 'anonymous');
      });
    }
    if (body.phone !== undefined && email === '') {
      throw new AuthHttpError(422, 'phone_provider_disabled', 'Phone signups are disabled');
    }
    if (Buffer.byteLength(email) > MAX_EMAIL_BYTES) {
      throw new AuthHttpError(400, 'validation_failed', 'An email address is too long');
    }
    if (!EMAIL.test(email)) {
      throw new AuthHttpError(400, 'validation_failed', 'Unable to validate email address: invalid format');
    }
    if (password === undefined || password === '') {
      throw new AuthHttpError(422, 'validation_failed', 'Signup requires a valid password');
    }
    if (password.length < 6) {
      throw new AuthHttpError(422, 'weak_password', 'Password should be at least 6 characters.', {
        weak_password: { reasons: ['length'] },
      });
    }
    const hash = await hashPassword(password);
    return this.#o.db
      .transaction(async (tx) => {
        const existing = await tx.query('select 1 from auth.users where email = $1 and is_sso_user = false', [
          email,
        ]);
        if (existing.length > 0)
          throw new AuthHttpError(422, 'user_already_exists', 'User already registered');
        const rows = await tx.query<{ id: string }>(
          `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at, last_sign_in_at, is_anonymous)
         values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
           $1, $2, now(), '{"provider":"email","providers":["email"]}'::jsonb, $3::jsonb, now(), now(), now(), false)
         returning id::text`,
          [email, hash, JSON.stringify(data)],
        );
        return this.#issueSession(tx, rows[0]!.id, 'password');
      })
      .catch((error: unknown) => {
        // Two sign-ups racing for one email: the unique index decides, GoTrue's answer follows.
        if (isPostgresError(error) && error.code === '23505') {
          throw new AuthHttpError(422, 'user_already_exists', 'User already registered');
        }
        throw error;
      });
  }

  async #updateUser(userId: string, body: Record<string, unknown>): Promise<AuthUser> {
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : undefined;
    const password = typeof body.password === 'string' ? body.password : undefined;
    const data = isRecord(body.data) ? body.data : undefined;
    if (email !== undefined && Buffer.byteLength(email) > MAX_EMAIL_BYTES) {
      throw new AuthHttpError(400, 'validation_failed', 'An email address is too long');
    }
    if (email !== undefined && !EMAIL.test(email)) {
      throw new AuthHttpError(400, 'validation_failed', 'Unable to validate email address: invalid format');
    }
    if (password !== undefined && password.length < 6) {
      throw new AuthHttpError(422, 'weak_password', 'Password should be at least 6 characters.', {
        weak_password: { reasons: ['length'] },
      });
    }
    const current = await this.#o.db.query<{ encrypted_password: string | null }>(
      'select encrypted_password from auth.users where id = $1',
      [userId],
    );
    const stored = current[0]?.encrypted_password ?? null;
    if (password !== undefined && stored !== null && (await verifyPassword(password, stored))) {
      throw new AuthHttpError(
        422,
        'same_password',
        'New password should be different from the old password.',
      );
    }
    const hash = password === undefined ? null : await hashPassword(password);
    return this.#o.db
      .transaction(async (tx) => {
        if (data !== undefined) {
          // GoTrue merges user metadata: given keys replace, null values remove.
          await tx.query(
            `update auth.users set raw_user_meta_data = jsonb_strip_nulls(coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb),
               updated_at = now() where id = $1`,
            [userId, JSON.stringify(data)],
          );
        }
        if (hash !== null) {
          await tx.query('update auth.users set encrypted_password = $2, updated_at = now() where id = $1', [
            userId,
            hash,
          ]);
        }
        if (email !== undefined) {
          const taken = await tx.query('select 1 from auth.users where email = $1 and id <> $2', [
            email,
            userId,
          ]);
          if (taken.length > 0) {
            throw new AuthHttpError(
              422,
              'email_exists',
              'A user with this email address has already been registered',
            );
          }
          // Email changes are confirmed at once (no mailer); an anonymous user becomes permanent.
          await tx.query(
            `update auth.users set email = $2, email_confirmed_at = coalesce(email_confirmed_at, now()),
               is_anonymous = false,
               raw_app_meta_data = case when is_anonymous then '{"provider":"email","providers":["email"]}'::jsonb
                                        else raw_app_meta_data end,
               updated_at = now()
             where id = $1`,
            [userId, email],
          );
        }
        return this.#loadUser(tx, userId);
      })
      .catch((error: unknown) => {
        if (isPostgresError(error) && error.code === '23505') {
          throw new AuthHttpError(
            422,
            'email_exists',
            'A user with this email address has already been registered',
          );
        }
        throw error;
      });
  }

  async #password(body: Record<string, unknown>) {
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const rows = await this.#o.db.query<{ id: string; encrypted_password: string | null; banned: boolean }>(
      `select id::text, encrypted_password, coalesce(banned_until > now(), false) as banned
       from auth.users where email = $1 and is_sso_user = false and deleted_at is null`,
      [email],
    );
    const row = rows[0];
    if (
      row === undefined ||
      row.encrypted_password === null ||
      !(await verifyPassword(password, row.encrypted_password))
    ) {
      throw new AuthHttpError(400, 'invalid_credentials', 'Invalid login credentials');
    }
    if (row.banned) throw new AuthHttpError(400, 'user_banned', 'User is banned');
    return this.#o.db.transaction(async (tx) => {
      await tx.query('update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1', [
        row.id,
      ]);
      return this.#issueSession(tx, row.id, 'password');
    });
  }

  async #refresh(body: Record<string, unknown>) {
    const token = typeof body.refresh_token === 'string' ? body.refresh_token : '';
    if (token === '') throw new AuthHttpError(400, 'validation_failed', 'Refresh Token is required');
    const result = await this.#o.db.transaction(async (tx) => {
      const rows = await tx.query<{
        id: string;
        revoked: boolean;
        session_id: string;
        user_id: string;
        recent: boolean;
      }>(
        `select id::text, coalesce(revoked, false) as revoked, session_id::text, user_id,
           updated_at > now() - make_interval(secs => $2) as recent
         from auth.refresh_tokens where token = $1 for update`,
        [token, REFRESH_REUSE_INTERVAL],
      );
      const row = rows[0];
      if (row === undefined) {
        throw new AuthHttpError(
          400,
          'refresh_token_not_found',
          'Invalid Refresh Token: Refresh Token Not Found',
        );
      }
      if (row.revoked) {
        if (row.recent) {
          const active = await tx.query<{ token: string }>(
            `select token from auth.refresh_tokens where session_id = $1 and not coalesce(revoked, false)
             order by id desc limit 1`,
            [row.session_id],
          );
          if (active[0] !== undefined) {
            return this.#sessionResponse(tx, row.user_id, row.session_id, active[0].token, 'token_refresh');
          }
        }
        // Reuse of a revoked token outside the reuse interval: revoke the whole session
        // (committed, then reported).
        await tx.query('delete from auth.sessions where id = $1', [row.session_id]);
        return new AuthHttpError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
      }
      await tx.query('update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1', [
        row.id,
      ]);
      const next = randomBytes(16).toString('base64url');
      await tx.query(
        `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
         values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)`,
        [next, row.user_id, token, row.session_id],
      );
      await tx.query('update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1', [
        row.session_id,
      ]);
      return this.#sessionResponse(tx, row.user_id, row.session_id, next, 'token_refresh');
    });
    if (result instanceof AuthHttpError) throw result;
    return result;
  }

  async #issueSession(tx: Queryable, userId: string, method: string) {
    const sessions = await tx.query<{ id: string }>(
      `insert into auth.sessions (id, user_id, created_at, updated_at) values (gen_random_uuid(), $1, now(), now())
       returning id::text`,
      [userId],
    );
    const sessionId = sessions[0]!.id;
    const refreshToken = randomBytes(16).toString('base64url');
    await tx.query(
      `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
       values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3)`,
      [refreshToken, userId, sessionId],
    );
    return this.#sessionResponse(tx, userId, sessionId, refreshToken, method);
  }

  async #sessionResponse(
    tx: Queryable,
    userId: string,
    sessionId: string,
    refreshToken: string,
    method: string,
  ) {
    const user = await this.#loadUser(tx, userId);
    const now = Math.floor(Date.now() / 1000);
    const claims: JwtClaims = {
      aud: 'authenticated',
      exp: now + this.#o.accessTokenTtl,
      iat: now,
      iss: this.#o.issuer(),
      sub: user.id,
      email: user.email,
      phone: '',
      app_metadata: user.app_metadata,
      user_metadata: user.user_metadata,
      role: user.role || 'authenticated',
      aal: 'aal1',
      amr: [{ method, timestamp: now }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
    };
    return {
      access_token: signJwt(claims, this.#o.jwtSecret),
      token_type: 'bearer',
      expires_in: this.#o.accessTokenTtl,
      expires_at: now + this.#o.accessTokenTtl,
      refresh_token: refreshToken,
      user,
    };
  }

  async #loadUser(q: Queryable, userId: string): Promise<AuthUser> {
    const rows = await q.query<UserRow>(
      `select u.id::text as id, ${USER_JSON} as "user" from auth.users u where u.id = $1`,
      [userId],
    );
    const row = rows[0];
    if (row === undefined)
      throw new AuthHttpError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
    return JSON.parse(row.user) as AuthUser;
  }

  async #requireUser(req: IncomingMessage): Promise<{ userId: string; sessionId: string | undefined }> {
    const token = bearerToken(req);
    if (token === undefined || token === '') {
      throw new AuthHttpError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    }
    const result = verifyJwt(token, this.#o.jwtSecret);
    if (!result.ok) {
      const why =
        result.reason === 'expired' ? 'token has invalid claims: token is expired' : 'signature is invalid';
      throw new AuthHttpError(403, 'bad_jwt', `invalid JWT: unable to parse or verify signature, ${why}`);
    }
    const sub = result.claims.sub;
    if (typeof sub !== 'string' || sub === '')
      throw new AuthHttpError(403, 'bad_jwt', 'invalid claim: missing sub claim');
    const sessionId = typeof result.claims.session_id === 'string' ? result.claims.session_id : undefined;
    if (sessionId !== undefined) {
      const sessions = await this.#o.db.query('select 1 from auth.sessions where id = $1', [sessionId]);
      if (sessions.length === 0) {
        throw new AuthHttpError(
          403,
          'session_not_found',
          'Session from session_id claim in JWT does not exist',
        );
      }
    }
    return { userId: sub, sessionId };
  }

  async #logout(req: IncomingMessage, scope: string): Promise<void> {
    let who: { userId: string; sessionId: string | undefined };
    try {
      who = await this.#requireUser(req);
    } catch (error) {
      if (error instanceof AuthHttpError && error.errorCode === 'session_not_found') return;
      throw error;
    }
    if (scope === 'local') {
      await this.#o.db.query('delete from auth.sessions where id = $1', [who.sessionId ?? null]);
    } else if (scope === 'others') {
      await this.#o.db.query('delete from auth.sessions where user_id = $1 and id is distinct from $2', [
        who.userId,
        who.sessionId ?? null,
      ]);
    } else {
      await this.#o.db.query('delete from auth.sessions where user_id = $1', [who.userId]);
    }
  }
}
