/**
 * HS256 JSON Web Tokens, signed and checked with `node:crypto` the way GoTrue issues
 * them and PostgREST / Realtime verify them.
 *
 * @example
 * ```ts
 * const token = signJwt({ role: 'anon', iss: 'supabase-demo' }, secret, { expiresIn: 3600 });
 * const result = verifyJwt(token, secret);
 * if (result.ok) console.log(result.claims.role);
 * ```
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * JWT claims as Supabase issues them; any other claim is carried along unchanged.
 *
 * @example
 * ```ts
 * const claims: JwtClaims = { sub: userId, role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 1 };
 * const expired = signJwt(claims, server.jwtSecret);
 * ```
 */
export interface JwtClaims {
  [claim: string]: unknown;
  role?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  iss?: string;
  email?: string;
  session_id?: string;
  is_anonymous?: boolean;
}

/**
 * Why a token was refused. `reason` sorts failures for Realtime's wording; `code` is
 * PostgREST's error code for the same failure (`PGRST301` for a token that cannot be
 * decoded or verified, `PGRST303` for a verified token whose claims are refused) and
 * `message` its message.
 */
export type JwtFailure =
  | { ok: false; reason: 'malformed'; code: 'PGRST301' | 'PGRST303'; message: string }
  | { ok: false; reason: 'signature'; code: 'PGRST301'; message: string }
  | { ok: false; reason: 'expired'; code: 'PGRST303'; message: string; expiredSeconds: number };

/**
 * The outcome of {@link verifyJwt}.
 *
 * @example
 * ```ts
 * const r: JwtVerification = verifyJwt(token, secret);
 * const role = r.ok ? r.claims.role : undefined;
 * ```
 */
export type JwtVerification = { ok: true; claims: JwtClaims } | JwtFailure;

/**
 * Options of {@link signJwt}.
 *
 * @example
 * ```ts
 * signJwt({ role: 'authenticated', sub: id }, secret, { expiresIn: 60 });
 * ```
 */
export interface SignJwtOptions {
  /** Lifetime in seconds; sets `exp` (and `iat` when absent). */
  expiresIn?: number;
  /** The current time in seconds since the epoch (default: the wall clock). */
  now?: number;
}

function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

function hmac(secret: string, data: string): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

/**
 * Signs `claims` with HS256.
 *
 * @example
 * ```ts
 * const serviceKey = signJwt({ role: 'service_role', iss: 'supabase-demo' }, secret, { expiresIn: 10 * 365 * 86400 });
 * ```
 */
export function signJwt(claims: JwtClaims, secret: string, options: SignJwtOptions = {}): string {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const body: JwtClaims = { ...claims };
  if (options.expiresIn !== undefined) {
    body.iat ??= now;
    body.exp = now + options.expiresIn;
  }
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify(body));
  return `${head}.${payload}.${hmac(secret, `${head}.${payload}`).toString('base64url')}`;
}

/** The only signing algorithm accepted: the one the dev server signs with. */
const ALGORITHM = 'HS256';

/**
 * Decodes one segment, accepting only canonical base64url (RFC 7515 §2): the URL-safe
 * alphabet, no padding, no whitespace, a length that encodes whole bytes and zero
 * unused trailing bits. Anything else (padding, `+` and `/`, a stray character, a
 * different last character that decodes to the same bytes) is refused, so one token has
 * one spelling.
 */
function decodeSegment(part: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(part) || part.length % 4 === 1) return undefined;
  const bytes = Buffer.from(part, 'base64url');
  return bytes.toString('base64url') === part ? bytes : undefined;
}

function decodeJson(part: string): unknown {
  const bytes = decodeSegment(part);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Options of {@link verifyJwt}.
 *
 * @example
 * ```ts
 * verifyJwt(token, secret, undefined, { leewaySeconds: 30 }); // PostgREST's clock skew
 * ```
 */
export interface VerifyJwtOptions {
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 0). PostgREST
   * allows 30: a token is refused once `exp` is 30 s or more in the past, or `nbf` or
   * `iat` more than 30 s in the future.
   */
  leewaySeconds?: number;
}

const malformed = (message: string, code: 'PGRST301' | 'PGRST303' = 'PGRST301'): JwtFailure => ({
  ok: false,
  reason: 'malformed',
  code,
  message,
});

/**
 * Checks an HS256 token as PostgREST does: three canonical base64url segments, a JSON
 * object header with `alg: "HS256"` (`none` and every other algorithm are refused), a
 * valid signature, a JSON object payload, and the time claims `exp`, `nbf` and `iat`
 * (numbers when present; checked with `leewaySeconds` of clock skew). Messages and codes
 * follow PostgREST's.
 *
 * @example
 * ```ts
 * const r = verifyJwt(token, secret);
 * if (!r.ok && r.reason === 'expired') console.log('JWT expired');
 * ```
 */
export function verifyJwt(
  token: string,
  secret: string,
  now = Math.floor(Date.now() / 1000),
  options: VerifyJwtOptions = {},
): JwtVerification {
  const leeway = options.leewaySeconds ?? 0;
  if (token === '') return malformed('Empty JWT is sent in Authorization header');
  const parts = token.split('.');
  if (parts.length !== 3) return malformed(`Expected 3 parts in JWT; got ${parts.length}`);
  const [head, payload, signature] = parts as [string, string, string];
  const header = decodeJson(head);
  if (!isObject(header)) return malformed('JWT cryptographic operation failed');
  if (header.alg !== ALGORITHM || header.crit !== undefined) {
    return malformed('Wrong or unsupported encoding algorithm');
  }
  const given = decodeSegment(signature);
  const expected = hmac(secret, `${head}.${payload}`);
  if (given === undefined || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      reason: 'signature',
      code: 'PGRST301',
      message: 'JWT cryptographic operation failed',
    };
  }
  const claims = decodeJson(payload);
  if (!isObject(claims)) return malformed('Parsing claims failed', 'PGRST303');
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    const value = claims[name];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
      return malformed(`The JWT '${name}' claim must be a number`, 'PGRST303');
    }
  }
  const { exp, nbf, iat } = claims as { exp?: number; nbf?: number; iat?: number };
  if (exp !== undefined && exp <= now - leeway) {
    return {
      ok: false,
      reason: 'expired',
      code: 'PGRST303',
      message: 'JWT expired',
      expiredSeconds: now - exp,
    };
  }
  if (nbf !== undefined && nbf > now + leeway) return malformed('JWT not yet valid', 'PGRST303');
  if (iat !== undefined && iat > now + leeway) return malformed('JWT issued at future', 'PGRST303');
  return { ok: true, claims: claims as JwtClaims };
}
