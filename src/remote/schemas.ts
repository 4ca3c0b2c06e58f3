/**
 * zod schemas for everything userdb reads from the server: RPC results and Realtime payloads.
 * Nothing from the network is trusted before it passed one of these.
 */
import { z } from 'zod';
import type { CompactDoc } from '../doc/types.js';
import { normalizeToken } from './token.js';

const FIELD_TYPES = [
  'string',
  'number',
  'integer',
  'boolean',
  'date',
  'time',
  'datetime',
  'object',
  'array',
  'any',
] as const;

/** An `updated_at` token in any Postgres rendering, normalized to the canonical form. */
export const tokenSchema = z.string().transform((text, ctx) => {
  const token = normalizeToken(text);
  if (token === null) {
    ctx.addIssue({ code: 'custom', message: `not a timestamptz: ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return token;
});

const fieldSchema = z.object({ name: z.string().min(1), type: z.enum(FIELD_TYPES) });

const tableSchema = z
  .object({
    schema: z.object({ fields: z.array(fieldSchema), primaryKey: z.array(z.string()).min(1) }),
    rows: z.array(z.array(z.unknown())),
  })
  .superRefine((table, ctx) => {
    const names = table.schema.fields.map((f) => f.name);
    if (new Set(names).size !== names.length)
      ctx.addIssue({ code: 'custom', message: 'duplicate field name' });
    for (const pk of table.schema.primaryKey) {
      if (!names.includes(pk))
        ctx.addIssue({ code: 'custom', message: `primary key field "${pk}" is not a field` });
    }
    table.rows.forEach((row, i) => {
      if (row.length !== names.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['rows', i],
          message: `row has ${row.length} cells, the schema ${names.length} fields`,
        });
      }
    });
  });

/**
 * The structure of a compact document as stored on the server: version 1, tables with ordered
 * fields of known types, a primary key naming existing fields, rows aligned to the fields.
 */
export const compactDocSchema = z.object({
  version: z.literal(1),
  tables: z.record(z.string(), tableSchema),
}) as unknown as z.ZodType<CompactDoc>;

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
