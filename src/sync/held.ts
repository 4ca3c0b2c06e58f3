/**
 * Held outbox entries: an entry the server refuses for good (a bad patch, a document over the size
 * limit) is moved aside instead of stopping sync, together with the later entries that touch the
 * same rows or tables (they were written on top of it). The rest of the outbox keeps syncing; the
 * app lists held entries and retries (possibly repaired) or discards them (`db.heldEntries()`).
 */
import { parseKeyedPath } from '../doc/index.js';
import { BadPatchError, PayloadTooLargeError, UserDbError, type UserDbErrorCode } from '../errors.js';
import type { SyncOutboxEntry } from './ports.js';

const PREFIX = 'userdb:held ';

/**
 * True for a push error that concerns the batch's content (so holding the entry lets the rest sync),
 * not the session or the server.
 *
 * @example
 * ```ts
 * if (entries.length === 1 && isEntryError(e)) hold(entries[0]);
 * ```
 */
export function isEntryError(e: unknown): e is UserDbError {
  return e instanceof BadPatchError || e instanceof PayloadTooLargeError;
}

/**
 * The reason stored with a held entry: the error, and the seq of the entry it waits for when it is
 * held only because it depends on that one.
 *
 * @example
 * ```ts
 * await store.holdEntries([{ seq: 7, reason: heldReason(err) }]);
 * ```
 */
export function heldReason(error: UserDbError, waitsFor?: number): string {
  return `${PREFIX}${JSON.stringify({ code: error.code, name: error.name, message: error.message, waitsFor })}`;
}

/** What {@link parseHeldReason} reads back. */
export interface HeldReason {
  error: UserDbError;
  waitsFor: number | undefined;
}

/**
 * Reads a stored reason back as a typed error. A reason not written by {@link heldReason} (an entry
 * quarantined because it could not be read) becomes a `UserDbError` with code `storage`.
 *
 * @example
 * ```ts
 * const { error, waitsFor } = parseHeldReason(record.reason);
 * ```
 */
export function parseHeldReason(reason: string): HeldReason {
  if (reason.startsWith(PREFIX)) {
    try {
      const r = JSON.parse(reason.slice(PREFIX.length)) as {
        code?: unknown;
        name?: unknown;
        message?: unknown;
        waitsFor?: unknown;
      };
      const message = typeof r.message === 'string' ? r.message : 'refused by the server';
      const waitsFor = typeof r.waitsFor === 'number' ? r.waitsFor : undefined;
      if (r.name === 'BadPatchError') return { error: new BadPatchError(message), waitsFor };
      if (r.name === 'PayloadTooLargeError') return { error: new PayloadTooLargeError(message), waitsFor };
      const code = (typeof r.code === 'string' ? r.code : 'bad_patch') as UserDbErrorCode;
      return { error: new UserDbError(code, message), waitsFor };
    } catch {
      // fall through: an unreadable reason is reported as it is
    }
  }
  return { error: new UserDbError('storage', reason), waitsFor: undefined };
}

/** The rows (`table\0key`) and whole tables (`table`) an entry touches. */
function touched(entry: SyncOutboxEntry): { rows: Set<string>; tables: Set<string> } {
  const rows = new Set<string>();
  const tables = new Set<string>();
  for (const op of entry.ops) {
    try {
      const p = parseKeyedPath(op.path);
      if (p.row === undefined) tables.add(p.table);
      else rows.add(`${p.table}\u0000${p.row}`);
    } catch {
      tables.add('\u0000any'); // unreadable path: treat as touching everything
    }
  }
  return { rows, tables };
}

/**
 * The seqs of `later` entries that depend on `root`: they touch a row or a table that `root` or an
 * earlier dependent touches (a table-level op touches every row of its table). In seq order.
 *
 * @example
 * ```ts
 * const waiting = dependentsOf(held, outbox.filter((e) => e.seq > held.seq));
 * ```
 */
export function dependentsOf(root: SyncOutboxEntry, later: readonly SyncOutboxEntry[]): number[] {
  const { rows, tables } = touched(root);
  const out: number[] = [];
  for (const e of later) {
    if (e.seq <= root.seq) continue;
    const t = touched(e);
    const tableHit = (name: string) => tables.has(name) || tables.has('\u0000any');
    const hit =
      tables.has('\u0000any') ||
      t.tables.has('\u0000any') ||
      [...t.rows].some((r) => rows.has(r) || tableHit(r.slice(0, r.indexOf('\u0000')))) ||
      [...t.tables].some((name) => tableHit(name) || [...rows].some((r) => r.startsWith(`${name}\u0000`)));
    if (!hit) continue;
    out.push(e.seq);
    for (const r of t.rows) rows.add(r);
    for (const name of t.tables) tables.add(name);
  }
  return out;
}
