/**
 * Small HTTP helpers shared by the dev server's endpoints: bounded body reading,
 * JSON responses and CORS.
 *
 * @example
 * ```ts
 * const body = await readBody(req, 1024 * 1024);
 * sendJson(req, res, 200, { ok: true });
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzip, constants as zlibConstants } from 'node:zlib';

/**
 * Thrown by {@link readBody} when the body is larger than allowed. By then the body has
 * been read to its end and discarded (up to a hard cap), so the 413 that follows reaches
 * the client instead of a reset connection; `drained` is false when the client sent more
 * than the cap (or too slowly) and the connection must be closed after the answer.
 */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  readonly limit: number;
  readonly drained: boolean;
  constructor(limit: number, drained = true) {
    super(`request body exceeds ${limit} bytes`);
    this.limit = limit;
    this.drained = drained;
  }
}

/** How much of an oversized body is read and discarded so that the 413 reaches the client. */
export function drainCap(limit: number): number {
  return Math.max(4 * limit, 64 * 1024 * 1024);
}

/** How long an oversized body may take to arrive before the connection is closed. */
const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Reads the whole request body, refusing more than `limit` bytes. An oversized body is
 * still read to its end (and thrown away, up to {@link drainCap}) before the promise
 * rejects: a server that answers 413 and closes while the client is still sending makes
 * the client see EPIPE/ECONNRESET instead of the 413, so it would retry a permanent error
 * as a network failure.
 *
 * @example
 * ```ts
 * try { await readBody(req, 10); } catch (e) { if (e instanceof BodyTooLargeError) send413(); }
 * ```
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const header = req.headers['content-length'];
  const declared = header === undefined ? undefined : Number(header);
  const cap = drainCap(limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: () => void) => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      outcome();
    };
    const giveUp = () => {
      // Too much or too slow: answer now; the connection closes after the answer.
      req.pause();
      finish(() => reject(new BodyTooLargeError(limit, false)));
    };
    const startDraining = () => {
      tooLarge = true;
      chunks.length = 0;
      timer = setTimeout(giveUp, DRAIN_TIMEOUT_MS);
      timer.unref();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (tooLarge) {
        if (size > cap) giveUp();
        return;
      }
      if (size > limit) {
        startDraining();
        if (size > cap) giveUp();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () =>
      finish(() => (tooLarge ? reject(new BodyTooLargeError(limit)) : resolve(Buffer.concat(chunks))));
    const onError = (error: Error) => finish(() => reject(error));
    const onClose = () => finish(() => reject(new Error('request closed before its body was read')));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
    if (declared !== undefined && Number.isFinite(declared) && declared > limit) {
      if (declared > cap) giveUp();
      else startDraining();
    }
  });
}

/** Deepest nesting of arrays and objects accepted in a JSON body (default of the dev server). */
export const DEFAULT_MAX_JSON_DEPTH = 512;

/**
 * Whether the JSON text `text` nests arrays and objects more than `limit` levels deep.
 * It scans the text (brackets inside strings do not count) without parsing it, so it
 * is safe on any input: a deeply nested body must be refused before it reaches SQL,
 * where PostgreSQL's recursive JSON functions run out of stack (PGlite, with a smaller
 * stack than it believes it has, even breaks its backend).
 *
 * @example
 * ```ts
 * jsonTooDeep('[[1]]', 1); // true
 * jsonTooDeep('{"a":"[[["}', 1); // false
 * ```
 */
export function jsonTooDeep(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) {
        i++; // backslash: skip the escaped character
      } else if (c === 34) {
        inString = false;
      }
    } else if (c === 34) {
      inString = true;
    } else if (c === 91 || c === 123) {
      depth++;
      if (depth > limit) return true;
    } else if (c === 93 || c === 125) {
      depth--;
    }
  }
  return false;
}

/** The CORS headers the hosted API gateway sends: any origin, the requested headers. */
export function corsHeaders(req: IncomingMessage): Record<string, string> {
  const origin = req.headers.origin;
  return {
    'Access-Control-Allow-Origin': origin ?? '*',
    'Access-Control-Allow-Credentials': 'true',
    'Access-Control-Expose-Headers':
      'Content-Range, Content-Location, Preference-Applied, X-Supabase-Api-Version, WWW-Authenticate',
    Vary: 'Origin, Accept-Encoding',
  };
}

/** Bodies shorter than this are sent as they are (the gateway's minimum, as nginx's `gzip_min_length`). */
export const COMPRESS_MIN_BYTES = 1024;

/**
 * Whether the request's `Accept-Encoding` accepts gzip (`gzip` or `*`, with a non-zero `q`).
 *
 * @example
 * ```ts
 * acceptsGzip({ headers: { 'accept-encoding': 'gzip, deflate' } } as IncomingMessage); // true
 * ```
 */
export function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  let star: boolean | undefined;
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const param of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(param);
      if (m?.[1] !== undefined) q = Number(m[1]);
    }
    const ok = Number.isFinite(q) && q > 0;
    if (name.trim() === 'gzip') return ok;
    if (name.trim() === '*') star = ok;
  }
  return star === true;
}

/** Answers a CORS preflight request. */
export function sendPreflight(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204, {
    ...corsHeaders(req),
    'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
    'Access-Control-Allow-Headers':
      req.headers['access-control-request-headers'] ??
      'authorization, x-client-info, apikey, content-type, accept-profile, content-profile, prefer, x-supabase-api-version',
    'Access-Control-Max-Age': '86400',
  });
  res.end();
}

/** Sends a raw body (or none) with CORS headers. */
export function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: string | undefined,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const all: Record<string, string> = { ...corsHeaders(req), ...headers };
  if (body === undefined) {
    res.writeHead(status, all);
    res.end();
    return;
  }
  all['Content-Type'] ??= 'application/json; charset=utf-8';
  const bytes = Buffer.byteLength(body);
  if (req.method === 'HEAD' || bytes < COMPRESS_MIN_BYTES || !acceptsGzip(req)) {
    all['Content-Length'] = String(bytes);
    res.writeHead(status, all);
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  // as hosted Supabase's gateway does: a large answer goes out gzipped when the client accepts
  // it (browsers and Node's fetch do, and decode it transparently); compressed off the event
  // loop at zlib's fastest level
  gzip(body, { level: zlibConstants.Z_BEST_SPEED }, (error, zipped) => {
    if (res.headersSent || res.destroyed) return;
    if (error !== null) {
      all['Content-Length'] = String(bytes);
      res.writeHead(status, all);
      res.end(body);
      return;
    }
    all['Content-Encoding'] = 'gzip';
    all['Content-Length'] = String(zipped.byteLength);
    res.writeHead(status, all);
    res.end(zipped);
  });
}

/** Sends `value` as JSON with CORS headers. */
export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  send(req, res, status, JSON.stringify(value), headers);
}

/** The bearer token of the `Authorization` header, if any. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim() ?? '';
}

/**
 * The URL of a request as Node received it (`req.url`), or `undefined` when it cannot be
 * parsed. A path is resolved against a fixed origin by concatenation, so `//`, `//x` or
 * `///` stay paths instead of being read as a host (which `new URL(path, base)` does, and
 * throws on some of them).
 *
 * @example
 * ```ts
 * parseRequestUrl('//')?.pathname; // '//'
 * parseRequestUrl('/rest/v1/rpc/f?a=1')?.searchParams.get('a'); // '1'
 * ```
 */
export function parseRequestUrl(raw: string | undefined): URL | undefined {
  const target = raw ?? '/';
  try {
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target);
  } catch {
    return undefined;
  }
}
