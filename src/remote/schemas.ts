/**
 * zod schemas for everything userdb reads from the server: RPC results and Realtime payloads.
 * Nothing from the network is trusted before it passed one of these.
 */
import { z } from 'zod';
import { type CompactDoc, parseCompactDoc } from '../doc/index.js';
import { InvalidRemoteDocumentError } from '../errors.js';
import { normalizeToken } from './token.js';

/**
 * A change of the server's log (in a `userdb_pull` chain or a Broadcast) that is malformed, not
 * continuous, or does not apply to the base. Unlike an invalid document, it is not a dead end:
 * the sync engine then asks for the whole document.
 *
 * @example
 * ```ts
 * try { applyChain(base, changes); } catch (e) { if (e instanceof InvalidChangeError) pullWhole(); }
 * ```
 */
export class InvalidChangeError extends InvalidRemoteDocumentError {
  override name = 'InvalidChangeError';
}

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

/** One RFC 6902 op of the subset `userdb_patch` applies (index-based paths, as the server logs them). */
export const compactOpSchema = z.union([
  z.object({ op: z.enum(['add', 'replace', 'test']), path: z.string(), value: z.json() }).strict(),
  z.object({ op: z.literal('remove'), path: z.string() }).strict(),
]);

const batchSeqSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable();

/** One entry of the server's change log: in a `userdb_pull` chain (`ops` always set) or a Broadcast. */
export const changeSchema = z.object({
  before: tokenSchema,
  after: tokenSchema,
  ops: z.array(compactOpSchema).nullable(),
  client_id: z.string().min(1).nullable(),
  batch_seq: batchSeqSchema,
});

/**
 * `userdb_pull(since, delta => true)` answering a chain of changes, oldest first: `before` is sent
 * only on the first (each other's is the previous `after`).
 */
export const changesResponseSchema = z.object({
  changes: z
    .array(changeSchema.extend({ before: tokenSchema.optional(), ops: z.array(compactOpSchema) }))
    .min(1),
  updated_at: tokenSchema,
});

/** The payload of a `change` Broadcast on `userdb:<user id>`. */
export const broadcastPayloadSchema = z.object({
  before: tokenSchema,
  after: tokenSchema,
  ops: z.array(compactOpSchema).nullish(),
  client_id: z.string().min(1).nullish(),
  batch_seq: batchSeqSchema.optional(),
});
