/**
 * zod schemas for everything userdb reads from the server: RPC results and Realtime payloads.
 * Nothing from the network is trusted before it passed one of these.
 */
import { z } from 'zod';
import { type CompactDoc, parseCompactDoc } from '../doc/index.js';
import { InvalidRemoteDocumentError } from '../errors.js';
import { normalizeToken } from './token.js';

/** An `updated_at` token in any Postgres rendering, normalized to the canonical form. */
export const tokenSchema = z.string().transform((text, ctx) => {
  const token = normalizeToken(text);
  if (token === null) {
    ctx.addIssue({ code: 'custom', message: `not a timestamptz: ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return token;
});

/**
 * Validates a document received from the server completely (structure, values, keys) and returns
 * a clean copy; anything else becomes an {@link InvalidRemoteDocumentError} saying where.
 *
 * @example
 * ```ts
 * const doc = parseRemoteDoc(data.db, 'userdb_pull');
 * ```
 */
export function parseRemoteDoc(db: unknown, where: string): CompactDoc {
  try {
    return parseCompactDoc(db);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new InvalidRemoteDocumentError(`${where}: the server document is invalid: ${detail}`, { cause: e });
  }
}

/** `userdb_init()` and a non-null `userdb_pull()`: the whole document and its token. */
export const snapshotResponseSchema = z.object({ db: z.unknown(), updated_at: tokenSchema });

/** `userdb_patch()`. */
export const patchResponseSchema = z.object({ applied: z.boolean(), updated_at: tokenSchema });

/** A `postgres_changes` payload as realtime-js hands it to the callback. */
export const realtimePayloadSchema = z.object({
  eventType: z.enum(['INSERT', 'UPDATE', 'DELETE']),
  new: z.record(z.string(), z.unknown()).nullish(),
  errors: z.unknown().nullish(),
});
