/**
 * The PostgREST subset: `POST|GET|HEAD /rest/v1/rpc/:fn`, run the way PostgREST 12
 * runs it (one transaction, `role` and `request.jwt.claims` set locally, named
 * arguments taken from the JSON body through `json_to_record`), answered in
 * PostgREST's shapes and with its status codes.
 *
 * @example
 * ```ts
 * await handleRpc(req, res, { db, jwtSecret, faults, maxBodyBytes }, 'userdb_get', new URL(req.url!, 'http://x'));
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database, Queryable } from './database.js';
import { isPostgresError } from './database.js';
import type { Faults, RpcCall } from './faults.js';
import { BodyTooLargeError, bearerToken, jsonTooDeep, readBody, send, sendJson } from './http.js';
import { type JwtClaims, verifyJwt } from './jwt.js';

/** What the RPC handler needs from the server. */
export interface RestContext {
  db: Database;
  jwtSecret: string;
  faults: Faults;
  maxBodyBytes: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body. */
  maxJsonDepth: number;
  schemaCache: SchemaCache;
}

/** A PostgREST error body. */
export interface PostgrestErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/**
 * PostgREST's mapping from SQLSTATE to HTTP status (docs: "HTTP Status Codes").
 * `authenticated` decides 42501: 401 for the anonymous role, 403 otherwise.
 *
 * @example
 * ```ts
 * statusForSqlState('PT409', true); // 409
 * ```
 */
export function statusForSqlState(code: string, authenticated: boolean): number {
  if (code.startsWith('PT')) {
    const status = Number(code.slice(2));
    return Number.isInteger(status) && status >= 100 && status <= 599 ? status : 500;
  }
  switch (code) {
    case '23503':
    case '23505':
      return 409;
    case '25006':
      return 405;
    case '53400':
      return 500;
    case 'P0001':
      return 400;
    case '42883':
    case '42P01':
      return 404;
    case '42P17':
      return 500;
    case '42501':
      return authenticated ? 403 : 401;
    case '57P01':
      return 503;
  }
  const prefix = code.slice(0, 2);
  switch (prefix) {
    case '08':
      return 503;
    case '09':
    case '25':
    case '2D':
    case '38':
    case '39':
    case '3B':
    case '40':
    case '54':
    case '55':
    case '57':
    case '58':
    case 'F0':
    case 'HV':
    case 'P0':
    case 'XX':
      return 500;
    case '0L':
    case '0P':
    case '28':
      return 403;
    case '53':
      return 503;
  }
  return 400;
}

function errorBody(code: string, message: string, details: string | null = null, hint: string | null = null) {
  return { code, details, hint, message } satisfies PostgrestErrorBody;
}

/** PostgREST's allowed clock skew on `exp`, `nbf` and `iat`. */
const JWT_LEEWAY_SECONDS = 30;

/** Verifies the request's bearer token as PostgREST does; `undefined` claims mean anonymous. */
function authenticate(
  req: IncomingMessage,
  jwtSecret: string,
): { ok: true; claims: JwtClaims | undefined } | { ok: false; code: string; message: string } {
  const token = bearerToken(req);
  if (token === undefined) return { ok: true, claims: undefined };
  const result = verifyJwt(token, jwtSecret, undefined, { leewaySeconds: JWT_LEEWAY_SECONDS });
  if (result.ok) return { ok: true, claims: result.claims };
  return { ok: false, code: result.code, message: result.message };
}

interface FunctionArg {
  name: string;
  type: string;
}

interface FunctionInfo {
  schema: string;
  name: string;
  args: FunctionArg[];
  required: number;
  retset: boolean;
  returnsVoid: boolean;
  volatility: string;
}

async function findFunctions(tx: Queryable, schema: string, name: string): Promise<FunctionInfo[]> {
  const rows = await tx.query<{
    nargs_required: number;
    retset: boolean;
    returns_void: boolean;
    volatility: string;
    args: string;
  }>(
    `select
       (count_in - p.pronargdefaults)::int as nargs_required,
       p.proretset as retset,
       p.prorettype = 'pg_catalog.void'::pg_catalog.regtype as returns_void,
       p.provolatile::text as volatility,
       args::text as args
     from pg_catalog.pg_proc p
     join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     cross join lateral (
       select
         coalesce(json_agg(json_build_object('name', coalesce(p.proargnames[a.i], ''), 'type', pg_catalog.format_type(a.t, null)) order by a.i), '[]'::json) as args,
         count(*)::int as count_in
       from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as a(t, i)
       where coalesce(p.proargmodes[a.i]::text, 'i') in ('i', 'b', 'v')
     ) x
     where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'
     order by p.oid`,
    [schema, name],
  );
  return rows.map((row) => ({
    schema,
    name,
    args: JSON.parse(row.args) as FunctionArg[],
    required: Number(row.nargs_required),
    retset: row.retset,
    returnsVoid: row.returns_void,
    volatility: row.volatility,
  }));
}

/**
 * PostgREST's schema cache, for functions: the catalog lookup is done once per name.
 * A call whose arguments match no cached signature reloads the entry, so functions
 * created later are found at once; `NOTIFY pgrst, 'reload schema'` clears it all, as
 * it does for PostgREST.
 *
 * @example
 * ```ts
 * const cache = new SchemaCache();
 * await db.listen('pgrst', (payload) => cache.notify(payload));
 * ```
 */
export class SchemaCache {
  readonly #functions = new Map<string, FunctionInfo[]>();
  readonly #roles = new Map<string, 'allowed' | 'denied' | 'missing'>();
  readonly #settings = new Map<string, ReadonlyMap<string, string>>();

  /** @internal The candidates for `schema.name` matching `keys`, reloading on a miss. */
  async lookup(
    tx: Queryable,
    schema: string,
    name: string,
    keys: readonly string[],
  ): Promise<{ fn: FunctionInfo | undefined; candidates: FunctionInfo[] }> {
    const key = `${schema}.${name}`;
    const cached = this.#functions.get(key);
    const hit = cached?.find((c) => matches(c, keys));
    if (cached !== undefined && hit !== undefined) return { fn: hit, candidates: cached };
    const candidates = await findFunctions(tx, schema, name);
    this.#functions.set(key, candidates);
    return { fn: candidates.find((c) => matches(c, keys)), candidates };
  }

  /**
   * @internal Whether PostgREST's login role, `authenticator`, may switch to `role`
   * (`'missing'` when no such role exists). Cached like the functions.
   */
  async roleAccess(tx: Queryable, role: string): Promise<'allowed' | 'denied' | 'missing'> {
    const cached = this.#roles.get(role);
    if (cached !== undefined) return cached;
    const rows = await tx.query<{ access: 'allowed' | 'denied' | 'missing' }>(
      `select case
         when not exists (select 1 from pg_catalog.pg_roles where rolname = $1) then 'missing'
         when not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then 'allowed'
         when pg_catalog.pg_has_role('authenticator', $1, 'MEMBER') then 'allowed'
         else 'denied' end as access`,
      [role],
    );
    const access = rows[0]?.access ?? 'missing';
    if (access !== 'missing') this.#roles.set(role, access); // a role may be created later
    return access;
  }

  /**
   * @internal The settings of `role` (`alter role … set name = value`, for all databases
   * or for the current one, which wins) that a user may set, as PostgREST reads them for
   * its "impersonated role settings": `SET ROLE` does not apply a role's settings, so they
   * are applied with `set_config(…, true)` in each request's transaction. Cached until
   * `NOTIFY pgrst, 'reload config'` (or `'reload schema'`).
   */
  async roleSettings(tx: Queryable, role: string): Promise<ReadonlyMap<string, string>> {
    const cached = this.#settings.get(role);
    if (cached !== undefined) return cached;
    const rows = await tx.query<{ key: string; value: string }>(
      `select s.key, s.value
       from (
         select pg_catalog.split_part(c, '=', 1) as key,
                pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) as value,
                d.setdatabase <> 0 as specific
         from pg_catalog.pg_db_role_setting d
         join pg_catalog.pg_roles r on r.oid = d.setrole
         cross join lateral pg_catalog.unnest(d.setconfig) as c
         where r.rolname = $1
           and d.setdatabase in (0, (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database()))
       ) s
       join pg_catalog.pg_settings p on p.name = s.key and p.context = 'user'
       order by s.specific`,
      [role],
    );
    const settings = new Map<string, string>();
    for (const row of rows) settings.set(row.key, row.value);
    this.#settings.set(role, settings);
    return settings;
  }

  /** Forgets `schema.name` (after the database said it does not exist). */
  forget(schema: string, name: string): void {
    this.#functions.delete(`${schema}.${name}`);
  }

  /**
   * Handles a `pgrst` notification: `reload schema` (or an empty payload) clears the
   * cache, `reload config` the role settings.
   */
  notify(payload: string): void {
    if (payload === '' || payload === 'reload schema') {
      this.#functions.clear();
      this.#roles.clear();
      this.#settings.clear();
    } else if (payload === 'reload config') {
      this.#settings.clear();
    }
  }
}

function isSingleUnnamedJson(fn: FunctionInfo): boolean {
  const only = fn.args[0];
  return (
    fn.args.length === 1 &&
    only !== undefined &&
    only.name === '' &&
    (only.type === 'json' || only.type === 'jsonb')
  );
}

function matches(fn: FunctionInfo, keys: readonly string[]): boolean {
  if (isSingleUnnamedJson(fn)) return true;
  const names = fn.args.map((a) => a.name);
  if (!keys.every((k) => names.includes(k))) return false;
  return names.slice(0, fn.required).every((n) => keys.includes(n));
}

function notFound(schema: string, name: string, keys: readonly string[], candidates: FunctionInfo[]) {
  const sorted = [...keys].sort();
  const signature =
    sorted.length === 0 ? `${schema}.${name} without parameters` : `${schema}.${name}(${sorted.join(', ')})`;
  const searched =
    sorted.length === 0
      ? 'without parameters'
      : `with parameter${sorted.length === 1 ? '' : 's'} ${sorted.join(', ')}`;
  const suggestion = candidates[0];
  return errorBody(
    'PGRST202',
    `Could not find the function ${signature} in the schema cache`,
    `Searched for the function ${schema}.${name} ${searched} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
    suggestion === undefined
      ? null
      : `Perhaps you meant to call the function ${schema}.${name}(${suggestion.args.map((a) => a.name).join(', ')})`,
  );
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

const RESERVED_QUERY_PARAMS = new Set([
  'select',
  'order',
  'limit',
  'offset',
  'columns',
  'on_conflict',
  'apikey',
]);

/** PostgreSQL's error for a statement cancelled by `statement_timeout`. */
class StatementTimeoutError extends Error {
  readonly code = '57014';
  constructor() {
    super('canceling statement due to statement timeout');
  }
}

/** A duration setting as PostgreSQL reads it (`3s`, `100ms`, `1min`, a bare number in ms). */
function durationMs(value: string | undefined): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/i.exec(value ?? '');
  if (match === null) return 0;
  const scale: Record<string, number> = {
    us: 0.001,
    ms: 1,
    s: 1000,
    min: 60_000,
    h: 3_600_000,
    d: 86_400_000,
  };
  return Number(match[1]) * (scale[(match[2] ?? 'ms').toLowerCase()] ?? 1);
}

class RpcError extends Error {
  constructor(
    readonly status: number,
    readonly body: PostgrestErrorBody,
  ) {
    super(body.message);
  }
}

/**
 * Handles `/rest/v1/rpc/:fn`.
 *
 * @example
 * ```ts
 * if (path.startsWith('/rest/v1/rpc/')) return handleRpc(req, res, ctx, path.slice(13), url);
 * ```
 */
export async function handleRpc(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RestContext,
  fnName: string,
  url: URL,
): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') {
    sendJson(req, res, 405, errorBody('PGRST117', `Unsupported HTTP method: ${method}`));
    return;
  }
  const auth = authenticate(req, ctx.jwtSecret);
  if (!auth.ok) {
    sendJson(req, res, 401, errorBody(auth.code, auth.message), {
      'WWW-Authenticate': `Bearer error="invalid_token", error_description="${auth.message}"`,
    });
    return;
  }
  const claims: JwtClaims = auth.claims ?? { role: 'anon' };
  const role = typeof claims.role === 'string' && claims.role !== '' ? claims.role : 'anon';
  const authenticated = role !== 'anon';
  const schemaHeader = method === 'POST' ? req.headers['content-profile'] : req.headers['accept-profile'];
  const schema = typeof schemaHeader === 'string' && schemaHeader !== '' ? schemaHeader : 'public';
  if (schema !== 'public') {
    sendJson(
      req,
      res,
      406,
      errorBody(
        'PGRST106',
        'Invalid schema: ' + schema,
        null,
        'Only the following schemas are exposed: public',
      ),
    );
    return;
  }

  let rawBody = '';
  let args: Record<string, unknown>;
  if (method === 'POST') {
    try {
      rawBody = (await readBody(req, ctx.maxBodyBytes)).toString('utf8');
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        sendJson(
          req,
          res,
          413,
          errorBody('PGRST413', `Payload Too Large: the request body exceeds ${error.limit} bytes`),
          error.drained ? {} : { Connection: 'close' },
        );
        return;
      }
      throw error;
    }
    if (jsonTooDeep(rawBody, ctx.maxJsonDepth)) {
      sendJson(
        req,
        res,
        400,
        errorBody(
          'PGRST102',
          `JSON nested deeper than ${ctx.maxJsonDepth} levels`,
          `Arrays and objects in the request body may nest at most ${ctx.maxJsonDepth} levels deep.`,
        ),
      );
      return;
    }
    let parsed: unknown = {};
    if (rawBody.trim() !== '') {
      try {
        parsed = JSON.parse(rawBody);
      } catch {
        sendJson(req, res, 400, errorBody('PGRST102', 'Empty or invalid json'));
        return;
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      sendJson(req, res, 400, errorBody('PGRST102', 'Empty or invalid json'));
      return;
    }
    args = parsed as Record<string, unknown>;
    if (rawBody.trim() === '') rawBody = '{}';
  } else {
    // No prototype: `?__proto__=x` is an argument named __proto__, as for PostgREST.
    args = Object.create(null) as Record<string, unknown>;
    for (const [key, value] of url.searchParams) if (!RESERVED_QUERY_PARAMS.has(key)) args[key] = value;
    rawBody = JSON.stringify(args);
  }
  const keys = Object.keys(args);

  let outcome: { kind: 'void' } | { kind: 'json'; body: string | null; count: number | undefined };
  try {
    outcome = await ctx.db.transaction(async (tx) => {
      if (method !== 'POST') await tx.query('set transaction read only');
      const { fn, candidates } = await ctx.schemaCache.lookup(tx, schema, fnName, keys);
      if (fn === undefined) throw new RpcError(404, notFound(schema, fnName, keys, candidates));
      // PostgREST logs in as `authenticator` and can only become the roles granted to it.
      const access = await ctx.schemaCache.roleAccess(tx, role);
      if (access === 'missing') {
        throw new RpcError(
          statusForSqlState('22023', authenticated),
          errorBody('22023', `role "${role}" does not exist`),
        );
      }
      if (access === 'denied') {
        throw new RpcError(
          statusForSqlState('42501', authenticated),
          errorBody('42501', `permission denied to set role "${role}"`),
        );
      }
      const settings = await ctx.schemaCache.roleSettings(tx, role);
      // The role's own settings come first so that the request's cannot be overridden.
      const entries = [...settings];
      const applied = entries.map((_, i) => `set_config($${2 * i + 6}, $${2 * i + 7}, true), `).join('');
      await tx.query(
        `select
           ${applied}
           set_config('role', $1, true),
           set_config('request.jwt.claims', $2, true),
           set_config('request.method', $3, true),
           set_config('request.path', $4, true),
           set_config('request.headers', $5, true),
           set_config('timezone', 'UTC', true)`,
        [
          role,
          JSON.stringify(claims),
          method,
          url.pathname,
          JSON.stringify(lowerCaseHeaders(req)),
          ...entries.flat(),
        ],
      );
      // PGlite runs a statement to its end (a single-threaded engine has no timer to cancel
      // it), so there a statement that overran the role's statement_timeout is rolled back
      // afterwards with the error PostgreSQL would have raised.
      const timeoutMs = ctx.db.kind === 'pglite' ? durationMs(settings.get('statement_timeout')) : 0;
      const timed = async <T>(run: () => Promise<T>): Promise<T> => {
        const started = performance.now();
        const result = await run();
        if (timeoutMs > 0 && performance.now() - started > timeoutMs) throw new StatementTimeoutError();
        return result;
      };
      const fnRef = `${quoteIdent(schema)}.${quoteIdent(fnName)}`;
      let call: string;
      let from = '';
      let params: unknown[] = [];
      if (isSingleUnnamedJson(fn) && !(keys.length === 1 && fn.args[0]?.name === keys[0])) {
        call = `${fnRef}($1::${fn.args[0]?.type ?? 'json'})`;
        params = [rawBody];
      } else if (keys.length === 0) {
        call = `${fnRef}()`;
      } else {
        const used = fn.args.filter((a) => keys.includes(a.name));
        call = `${fnRef}(${used.map((a) => `${quoteIdent(a.name)} => _pgrst_body.${quoteIdent(a.name)}`).join(', ')})`;
        from = ` from json_to_record($1::json) as _pgrst_body(${used.map((a) => `${quoteIdent(a.name)} ${a.type}`).join(', ')})`;
        params = [rawBody];
      }
      if (fn.returnsVoid) {
        await timed(() => tx.query(`select ${call}${from}`, params));
        return { kind: 'void' as const };
      }
      if (fn.retset) {
        const sql =
          from === '' ? ` from ${call} _pgrst_row` : `${from} cross join lateral ${call} _pgrst_row`;
        const rows = await timed(() =>
          tx.query<{ body: string; n: number }>(
            `select coalesce(json_agg(_pgrst_row), '[]'::json)::text as body, count(*)::int as n${sql}`,
            params,
          ),
        );
        return { kind: 'json' as const, body: rows[0]?.body ?? '[]', count: Number(rows[0]?.n ?? 0) };
      }
      const rows = await timed(() =>
        tx.query<{ body: string | null }>(`select to_json(${call})::text as body${from}`, params),
      );
      return { kind: 'json' as const, body: rows[0]?.body ?? null, count: undefined };
    });
  } catch (error) {
    if (error instanceof RpcError) {
      sendJson(req, res, error.status, error.body);
      return;
    }
    if (isPostgresError(error) && error.code === 'PGRST') {
      const custom = customRaise(error.message, error.detail);
      if (custom !== undefined) {
        sendJson(req, res, custom.status, custom.body, custom.headers);
        return;
      }
      sendJson(
        req,
        res,
        500,
        errorBody(
          'PGRST121',
          "Could not parse JSON in the RAISE SQLSTATE 'PGRST' error",
          `Invalid JSON value for MESSAGE or DETAIL: '${error.message}'`,
          "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'. DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.",
        ),
      );
      return;
    }
    if (isPostgresError(error)) {
      if (error.code === '42883') ctx.schemaCache.forget(schema, fnName);
      sendJson(
        req,
        res,
        statusForSqlState(error.code, authenticated),
        errorBody(error.code, error.message, error.detail ?? null, error.hint ?? null),
      );
      return;
    }
    throw error;
  }

  const call: RpcCall = {
    fn: fnName,
    args,
    method,
    role,
    sub: typeof claims.sub === 'string' ? claims.sub : undefined,
  };
  if (ctx.faults.shouldDrop(call)) {
    req.socket.destroy();
    return;
  }
  if (outcome.kind === 'void') {
    send(req, res, 204, undefined);
    return;
  }
  const headers: Record<string, string> = {};
  if (outcome.count !== undefined) {
    headers['Content-Range'] = outcome.count === 0 ? '*/*' : `0-${outcome.count - 1}/*`;
  }
  send(req, res, 200, outcome.body ?? 'null', headers);
}

/**
 * PostgREST's full response control: `raise sqlstate 'PGRST' using message = '{"code":…,
 * "message":…}', detail = '{"status":…,"headers":{…}}'`.
 */
function customRaise(
  message: string,
  detail: string | undefined,
): { status: number; body: PostgrestErrorBody; headers: Record<string, string> } | undefined {
  try {
    const m = JSON.parse(message) as Record<string, unknown>;
    const d = JSON.parse(detail ?? '') as Record<string, unknown>;
    if (typeof m.code !== 'string' || typeof m.message !== 'string' || typeof d.status !== 'number')
      return undefined;
    const headers: Record<string, string> = {};
    if (typeof d.headers === 'object' && d.headers !== null) {
      for (const [k, v] of Object.entries(d.headers)) if (typeof v === 'string') headers[k] = v;
    }
    return {
      status: d.status,
      body: errorBody(
        m.code,
        m.message,
        typeof m.details === 'string' ? m.details : null,
        typeof m.hint === 'string' ? m.hint : null,
      ),
      headers,
    };
  } catch {
    return undefined;
  }
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
