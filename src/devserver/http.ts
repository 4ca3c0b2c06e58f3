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

/** Thrown by {@link readBody} when the body is larger than allowed. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * Reads the whole request body, refusing more than `limit` bytes.
 *
 * @example
 * ```ts
 * try { await readBody(req, 10); } catch (e) { if (e instanceof BodyTooLargeError) send413(); }
 * ```
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}

/** The CORS headers the hosted API gateway sends: any origin, the requested headers. */
export function corsHeaders(req: IncomingMessage): Record<string, string> {
  const origin = req.headers.origin;
  return {
    'Access-Control-Allow-Origin': origin ?? '*',
    'Access-Control-Allow-Credentials': 'true',
    'Access-Control-Expose-Headers':
      'Content-Range, Content-Location, Preference-Applied, X-Supabase-Api-Version, WWW-Authenticate',
    Vary: 'Origin',
  };
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
  if (body !== undefined) {
    all['Content-Type'] ??= 'application/json; charset=utf-8';
    all['Content-Length'] = String(Buffer.byteLength(body));
  }
  res.writeHead(status, all);
  res.end(req.method === 'HEAD' ? undefined : body);
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
