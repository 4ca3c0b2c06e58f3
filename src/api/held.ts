/**
 * Held outbox entries as the public API shows them (see `db.heldEntries()`).
 */
import {
  encodeValue,
  type KeyedDoc,
  normalizeRow,
  type PatchOp,
  parseKeyedPath,
  storableIssue,
  type TableSchema,
} from '../doc/index.js';
import { type UserDbError, ValidationError } from '../errors.js';
import type { QuarantineRecord } from '../store/index.js';
import { parseHeldReason } from '../sync/held.js';

/**
 * A local write held back from sync: the server refused it for good (for example a document over
 * the size limit), or it depends on such a write (`waitsFor`), or it could not be read back from
 * IndexedDB. It is no longer pushed or shown in queries, and is kept until the app retries it
 * (possibly repaired) or discards it: nothing is dropped silently.
 *
 * @example
 * ```ts
 * for (const h of await db.heldEntries()) console.warn(h.seq, h.error.code, h.error.message);
 * ```
 */
export interface HeldEntry {
  /** Identifies the entry for {@link UserDb.retryHeld} and {@link UserDb.discardHeld}. */
  readonly id: number;
  /** Its place in the outbox when it was held. */
  readonly seq: number;
  /** The keyed JSON Patch of the write (`undefined` when it could not be read back). */
  readonly ops: readonly PatchOp[] | undefined;
  /** Why it is held: the server's error (`bad_patch`, `payload_too_large`…), or `storage`. */
  readonly error: UserDbError;
  /** Set when it is held only because it touches the rows of this earlier held entry (its `seq`). */
  readonly waitsFor: number | undefined;
  /** When it was held (ISO 8601). */
  readonly heldAt: string;
}

function opsOf(record: unknown): PatchOp[] | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const ops = (record as { ops?: unknown }).ops;
  if (!Array.isArray(ops)) return undefined;
  const ok = ops.every(
    (op: unknown) =>
      typeof op === 'object' &&
      op !== null &&
      typeof (op as { op?: unknown }).op === 'string' &&
      typeof (op as { path?: unknown }).path === 'string',
  );
  return ok ? (ops as PatchOp[]) : undefined;
}

/** The held entries among quarantined records (those that came from the outbox), oldest first. */
export function heldEntriesOf(records: readonly QuarantineRecord[]): HeldEntry[] {
  const out: HeldEntry[] = [];
  for (const r of records) {
    if (r.source !== 'outbox' || r.id === undefined) continue;
    const { error, waitsFor } = parseHeldReason(r.reason);
    const seq = Number(r.key);
    out.push({
      id: r.id,
      seq: Number.isSafeInteger(seq) ? seq : 0,
      ops: opsOf(r.record),
      error,
      waitsFor,
      heldAt: r.quarantinedAt,
    });
  }
  return out;
}

/**
 * Checks the values of ops given to `retryHeld` as a write would: rows and cells against their
 * table's schema, text PostgreSQL cannot store anywhere. Throws `ValidationError` naming table, key
 * and field (ops the current state does not allow are refused by the write itself).
 */
export function checkRepairOps(
  layer: { schemaOf(table: string): TableSchema | undefined },
  ops: readonly PatchOp[],
): void {
  for (const op of ops) {
    if (op.op === 'remove') continue;
    let target: ReturnType<typeof parseKeyedPath>;
    try {
      target = parseKeyedPath(op.path);
    } catch {
      throw new ValidationError(`not a keyed userdb path: ${JSON.stringify(op.path)}`);
    }
    const where = { table: target.table, key: target.row, field: target.field };
    const issue = storableIssue(op.value);
    if (issue !== undefined) throw new ValidationError(`PostgreSQL cannot store ${issue}`, where);
    const schema = layer.schemaOf(target.table) ?? tableValueSchema(op.value);
    if (schema === undefined || op.op === 'test') continue;
    if (target.target === 'row') normalizeRow(schema, op.value, where);
    else if (target.target === 'cell') {
      const def = schema.fields.find((f) => f.name === target.field);
      if (def === undefined) throw new ValidationError('unknown field', where);
      encodeValue(def.type, op.value, where);
    }
  }
}

function tableValueSchema(value: unknown): TableSchema | undefined {
  const schema = (value as { schema?: unknown } | null)?.schema;
  return typeof schema === 'object' && schema !== null ? (schema as TableSchema) : undefined;
}

/** Throws `ValidationError` naming table, key and field for text PostgreSQL cannot store in `doc`. */
export function checkStorable(doc: KeyedDoc): void {
  for (const [table, t] of Object.entries(doc.tables)) {
    const nameIssue = storableIssue(table);
    if (nameIssue !== undefined)
      throw new ValidationError(`invalid table name: PostgreSQL cannot store ${nameIssue}`);
    for (const [key, row] of Object.entries(t.rows)) {
      for (const [field, value] of Object.entries(row)) {
        const issue = storableIssue(value) ?? storableIssue(field);
        if (issue !== undefined)
          throw new ValidationError(`PostgreSQL cannot store ${issue}`, { table, key, field });
      }
    }
  }
}
