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
  iat?: number;
  iss?: string;
  email?: string;
  session_id?: string;
  is_anonymous?: boolean;
}

/** Why a token was refused. */
export type JwtFailure =
  | { ok: false; reason: 'malformed'; message: string }
  | { ok: false; reason: 'signature'; message: string }
  | { ok: false; reason: 'expired'; message: string; expiredSeconds: number };

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

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks an HS256 token's signature and `exp`. Messages follow PostgREST's wording.
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
): JwtVerification {
  const parts = token.split('.');
  if (parts.length !== 3) {
    return {
      ok: false,
      reason: 'malformed',
      message: `Expected 3 parts in JWT; got ${parts.length}`,
    };
  }
  const [head, payload, signature] = parts as [string, string, string];
  const header = decodeJson(head);
  const claims = decodeJson(payload);
  if (!isObject(header) || !isObject(claims)) {
    return { ok: false, reason: 'malformed', message: "JWT couldn't be decoded" };
  }
  const expected = hmac(secret, `${head}.${payload}`);
  const given = Buffer.from(signature, 'base64url');
  if (header.alg !== 'HS256' || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature', message: 'JWT cryptographic operation failed' };
  }
  const exp = claims.exp;
  if (exp !== undefined && (typeof exp !== 'number' || exp <= now)) {
    const expiredSeconds = typeof exp === 'number' ? now - exp : 0;
    return { ok: false, reason: 'expired', message: 'JWT expired', expiredSeconds };
  }
  return { ok: true, claims: claims as JwtClaims };
}
