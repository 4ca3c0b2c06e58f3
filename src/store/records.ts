/**
 * The records userdb keeps in IndexedDB, and the zod schemas that check them when they are read back.
 * Anything read from IndexedDB is untrusted (another library, an older version or a corrupted profile
 * may have written it): it goes through these schemas, and what fails is moved to the quarantine.
 */
import { z } from 'zod';
import type { CompactDoc, Json, PatchOp } from '../doc/index.js';

/** The empty document: the base of a user who has never synced. */
export const EMPTY_DOC: CompactDoc = Object.freeze({ version: 1, tables: Object.freeze({}) }) as CompactDoc;

/** The keys of the `meta` table. */
export const META_BASE = 'base';
/** Key of the small record that says which base is current (read on every change notification). */
export const META_BASE_VERSION = 'baseVersion';
/** Key of the device record (client id, next batch sequence). */
export const META_CLIENT = 'client';
/** Key of the marker saying which stored base was validated (see {@link BaseMarkRecord}). */
export const META_BASE_MARK = 'baseMark';

/**
 * The version of the document validation a stored base passed. Bumped when `parseCompactDoc`'s
 * rules change, so bases validated under older rules are validated again once.
 */
export const DOC_VALIDATION = 'compact-doc/1';

/** `meta/baseMark`: the stored base of `generation` passed the validation `validation`. */
export interface BaseMarkRecord {
  generation: number;
  validation: string;
}

/**
 * One server-acknowledged change on top of the stored base (the `log` table, key `generation`):
 * the base of generation `generation` is the base of `generation - 1` with `ops` applied.
 */
export interface LogRecord {
  /** The base generation this change produces (consecutive; the stored base is older). */
  generation: number;
  before: string | null;
  after: string;
  /** Index-based ops, as the server applied them. */
  ops: PatchOp[];
  /**
   * The keyed ops that turn a view of the previous base into one of this base, or `null` when the
   * change cannot be applied to a view that way (views rebuild, or keep their state when `exact`).
   */
  keyed: PatchOp[] | null;
  clientId: string | null;
  batchSeq: number | null;
  /** Outbox entries `seq <= acked` were acknowledged (deleted) by this change (own pushes). */
  acked: number | null;
  /** `ops` are exactly the outbox entries up to `acked` compiled on the previous base. */
  exact: boolean;
}

/** The last server-confirmed document and its concurrency token, as stored under `meta/base`. */
export interface BaseRecord {
  doc: CompactDoc;
  /** The server's `updated_at` for `doc`, as the exact string the server sent; `null` before the first sync. */
  updatedAt: string | null;
  /** Incremented on every base write; lets other instances notice a new base without reading it. */
  generation: number;
}

/** `meta/baseVersion`: written with every base, read to detect base changes cheaply. */
export interface BaseVersionRecord {
  generation: number;
  updatedAt: string | null;
  /**
   * Set by an exact push: this base is exactly base `generation` with the outbox entries up to
   * `upToSeq` applied. A view built on that base which had applied those entries is still current.
   */
  pushedFrom?: { generation: number; upToSeq: number };
}

/** `meta/client`: the device's identity for exactly-once pushes. */
export interface ClientRecord {
  clientId: string;
  nextBatchSeq: number;
}

/** One outbox row: the keyed patch of one write or transaction. */
export interface OutboxEntry {
  /** Auto-incremented, strictly increasing: the order in which writes were committed. */
  seq: number;
  ops: PatchOp[];
  /** ISO 8601 time of the local commit. */
  createdAt: string;
}

/**
 * One cell value this device wrote and the server acknowledged (the `own` table, key `cell`,
 * version 3): when a later change of another device declares, with a `test` op, that it overrode
 * this very value, the device reports `overridden`. `cell` is the keyed path of the cell without
 * `/tables/` and `rows/` (escaped table, key and field joined by `/`); `seq` the batch that wrote it
 * (the oldest records are pruned past {@link MAX_OWN_WRITES}).
 */
export interface OwnWriteRecord {
  cell: string;
  value: Json;
  seq: number;
}

/** Own cell writes remembered for `overridden` reports (the oldest are pruned). */
export const MAX_OWN_WRITES = 10_000;

/** A record that failed validation when read, kept aside instead of being lost. */
export interface QuarantineRecord {
  id?: number;
  /** Where the record was found. */
  source: 'meta' | 'outbox' | 'log';
  /** Its key there (`base`, `client`, or the outbox seq). */
  key: string;
  /** The record as it was found. */
  record: unknown;
  /** Why it was rejected. */
  reason: string;
  /** ISO 8601 time it was moved here. */
  quarantinedAt: string;
}

const jsonValue = z.json();

/** zod schema of a keyed patch op as stored in the outbox (shape only; semantics are checked on replay). */
export const patchOpSchema: z.ZodType<PatchOp> = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), path: z.string(), value: jsonValue }).strict(),
  z.object({ op: z.literal('replace'), path: z.string(), value: jsonValue }).strict(),
  z.object({ op: z.literal('test'), path: z.string(), value: jsonValue }).strict(),
  z.object({ op: z.literal('remove'), path: z.string() }).strict(),
]) as z.ZodType<PatchOp>;

/** zod schema of an outbox row. */
export const outboxEntrySchema: z.ZodType<OutboxEntry> = z.object({
  seq: z.number().int().positive(),
  ops: z.array(patchOpSchema).min(1),
  createdAt: z.string(),
});

const compactOpSchema = z.union([
  z.object({ op: z.enum(['add', 'replace', 'test']), path: z.string(), value: jsonValue }).strict(),
  z.object({ op: z.literal('remove'), path: z.string() }).strict(),
]) as z.ZodType<PatchOp>;

/** zod schema of a `log` record. */
export const logRecordSchema: z.ZodType<LogRecord> = z.object({
  generation: z.number().int().positive(),
  before: z.string().nullable(),
  after: z.string(),
  ops: z.array(compactOpSchema),
  keyed: z.array(patchOpSchema).nullable(),
  clientId: z.string().nullable(),
  batchSeq: z.number().int().nonnegative().nullable(),
  acked: z.number().int().nonnegative().nullable(),
  exact: z.boolean(),
});

/** zod schema of an `own` record. */
export const ownWriteRecordSchema: z.ZodType<OwnWriteRecord> = z.object({
  cell: z.string(),
  value: jsonValue,
  seq: z.number().int().nonnegative(),
});

/** zod schema of `meta/baseMark`. */
export const baseMarkSchema: z.ZodType<BaseMarkRecord> = z.object({
  generation: z.number().int().nonnegative(),
  validation: z.string(),
});

/** zod schema of `meta/base` (the document itself is checked by `parseCompactDoc`). */
export const baseRecordShape = z.object({
  doc: z.unknown(),
  updatedAt: z.string().nullable(),
  generation: z.number().int().nonnegative(),
});

/** zod schema of `meta/client`. */
export const clientRecordSchema: z.ZodType<ClientRecord> = z.object({
  clientId: z.string().min(1),
  nextBatchSeq: z.number().int().nonnegative(),
});

/** A short description of the first zod issue, for error messages. */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'malformed';
  const path = issue.path.length > 0 ? ` at ${issue.path.map(String).join('.')}` : '';
  return `${issue.message}${path}`;
}
