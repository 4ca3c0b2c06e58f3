/**
 * Rebasing the outbox on a new server base (ARCHITECTURE §6): the pending keyed patches are replayed
 * on the new document by `doc`'s tolerant {@link rebase}; a per-table `onConflict` hook may then
 * decide same-field conflicts instead of the default (the local write, which reaches the server
 * last, wins).
 */
import {
  type CompactDoc,
  type Json,
  jsonEqual,
  type KeyedDoc,
  keyedPath,
  normalizeRow,
  type PatchOp,
  parseKeyedPath,
  type RebaseConflict,
  type Row,
  rebase,
  rowKey,
  toKeyed,
} from '../doc/index.js';
import type { RewrittenEntry, SyncOutboxEntry } from './ports.js';

/**
 * A local edit that did not survive unchanged when the outbox was rebased on a newer server
 * document. `local` is the local value, `remote` the server's. `resolution`: `dropped` (the server's
 * version stays, e.g. an update of a row deleted remotely), `applied` (the local edit was applied
 * over a concurrent remote change, e.g. the same field edited on both sides), `merged` (an
 * `onConflict` hook chose `value`).
 */
export interface SyncConflict {
  /**
   * What happened (see docs/sync.md's conflict table); besides the kinds of `doc`'s rebase,
   * `row_updated`: a row deleted locally was updated remotely meanwhile (`local` is the row as this
   * device last had it from the server, `remote` the updated row). The delete wins by default
   * (`applied`); an `onConflict` hook returning `'remote'` keeps the row (`dropped`).
   * `overridden`: a value this device wrote (acknowledged) was overwritten by another device's rebase.
   */
  kind: RebaseConflict['kind'] | 'row_updated' | 'overridden';
  table: string;
  key?: string;
  field?: string;
  local: Json | undefined;
  remote: Json | undefined;
  resolution: 'dropped' | 'applied' | 'merged';
  /** The value kept, when an `onConflict` hook merged. */
  value?: Json;
}

/** A concurrent edit of one field on both sides, as passed to an `onConflict` hook. */
export interface FieldConflict {
  kind: 'field_changed';
  table: string;
  key: string;
  field: string;
  /** The local value (the one that would win by default). */
  local: Json;
  /** The value the server holds now. */
  remote: Json;
}

/**
 * A row this device deleted while another device updated it, as passed to an `onConflict` hook.
 * `'local'` (the default) deletes it; `'remote'` keeps the server's row; `{ value }` keeps the row
 * with `value` (a whole row of the table's fields; a value that does not fit keeps the server's row).
 */
export interface DeleteConflict {
  kind: 'row_updated';
  table: string;
  key: string;
  field?: undefined;
  /** The row as this device last had it from the server, before it deleted it. */
  local: Json;
  /** The row the server holds now. */
  remote: Json;
}

/**
 * Decides a conflict of one table: the same field edited on both sides ({@link FieldConflict}) or a
 * local delete of a row updated remotely ({@link DeleteConflict}). Return `'local'` (the default:
 * the local edit or delete wins), `'remote'` (drop the local edit or delete), or `{ value }` (write
 * a merged value, or keep the row with this value). Returning `undefined` keeps the default.
 *
 * @example
 * ```ts
 * const keepUpdatedRows: ConflictHandler = (c) => (c.kind === 'row_updated' ? 'remote' : 'local');
 * ```
 */
export type ConflictHandler = (
  conflict: FieldConflict | DeleteConflict,
) => 'local' | 'remote' | { value: Json } | undefined;

/** The outcome of {@link rebaseOutbox}. */
export interface OutboxRebase {
  /** What to store in the outbox (table creations keep their original ops, see `createsTable`). */
  entries: RewrittenEntry[];
  /** The rebased ops of every entry, valid on the new document in order (what a push compiles). */
  rebased: RewrittenEntry[];
  conflicts: SyncConflict[];
}

/**
 * Replays `entries` on `doc` and applies the per-table `onConflict` hooks. Conflicts where the local
 * and the remote value are equal (for example our own edit coming back) are not reported. Pure.
 *
 * @example
 * ```ts
 * const { entries, conflicts } = rebaseOutbox(pulled.doc, outbox, { tasks: () => 'remote' });
 * ```
 */
export function rebaseOutbox(
  doc: CompactDoc,
  entries: readonly SyncOutboxEntry[],
  handlers: Readonly<Record<string, ConflictHandler>> = {},
  previous?: CompactDoc,
): OutboxRebase {
  if (entries.length === 0) return { entries: [], rebased: [], conflicts: [] };
  const result = rebase(
    toKeyed(doc),
    entries.map((e) => e.ops),
  );
  const patches = result.patches;
  // entries that create a table are stored in their original form (see `createsTable`); a hook's
  // decision must reach that form too, or the next rebase (at push time, without the hooks) would
  // bring the local value back
  const originals = entries.map((e) => (createsTable(e.ops) ? e.ops.map((op) => ({ ...op })) : null));
  const conflicts: SyncConflict[] = [];
  for (const c of result.conflicts) {
    if (
      (c.kind === 'field_changed' || c.kind === 'row_exists') &&
      jsonEqual(c.local ?? null, c.remote ?? null)
    ) {
      continue; // the server already holds the local value: nothing was lost
    }
    const out: SyncConflict = { ...c };
    const handler = handlers[c.table];
    if (c.kind === 'field_changed' && handler !== undefined && c.key !== undefined && c.field !== undefined) {
      const decision = handler({
        kind: 'field_changed',
        table: c.table,
        key: c.key,
        field: c.field,
        local: c.local ?? null,
        remote: c.remote ?? null,
      });
      const path = keyedPath.cell(c.table, c.key, c.field);
      if (decision === 'remote') {
        dropCell(patches, path);
        dropCell(originals, path);
        out.resolution = 'dropped';
      } else if (decision !== undefined && decision !== 'local') {
        overrideCell(patches, path, decision.value);
        overrideOriginalCell(originals, path, c.remote ?? null, decision.value);
        out.resolution = 'merged';
        out.value = decision.value;
      }
    }
    conflicts.push(out);
  }
  if (previous !== undefined) {
    for (const c of deletesOfUpdatedRows(previous, doc, entries)) {
      const out: SyncConflict = { ...c, resolution: 'applied' };
      const decision = handlers[c.table]?.(c);
      const path = keyedPath.row(c.table, c.key);
      if (decision === 'remote') {
        keepRow(patches, path, undefined);
        keepRow(originals, path, undefined);
        out.resolution = 'dropped';
      } else if (decision !== undefined && decision !== 'local') {
        const row = fittingRow(doc, c.table, c.key, decision.value);
        keepRow(patches, path, row);
        keepRow(originals, path, row);
        out.resolution = row === undefined ? 'dropped' : 'merged';
        if (row !== undefined) out.value = row;
      }
      conflicts.push(out);
    }
  }
  return {
    entries: entries.map((e, i) => ({ seq: e.seq, ops: originals[i] ?? patches[i] ?? [] })),
    rebased: entries.map((e, i) => ({ seq: e.seq, ops: patches[i] ?? [] })),
    conflicts,
  };
}

/**
 * True when a patch creates a table. Its rebased form over an existing table is `remove` + `add`
 * carrying a snapshot of the remote rows; stored, that snapshot would wipe rows written remotely
 * before the next rebase. So such entries keep their original ops in the outbox and are rebased
 * again each time (in memory, at push time too).
 */
function createsTable(ops: readonly PatchOp[]): boolean {
  return ops.some((op) => op.op === 'add' && TABLE_PATH.test(op.path));
}

const TABLE_PATH = /^\/tables\/[^/]+$/;

/** Removes every local test and replace of one cell: the remote value stays. */
function dropCell(patches: (PatchOp[] | null)[], path: string): void {
  for (let i = 0; i < patches.length; i++) {
    const patch = patches[i];
    if (patch === null || patch === undefined) continue;
    patches[i] = patch.filter((op) => op.path !== path || (op.op !== 'replace' && op.op !== 'test'));
  }
}

/**
 * {@link overrideCell} for entries kept in their original form: every replace of the cell writes
 * `value`; the first test checks `remote` (the value the server holds now, as a rebase rewrites it),
 * later ones `value`. So the next rebase finds no new conflict unless the server changes the cell again.
 */
function overrideOriginalCell(
  originals: (PatchOp[] | null)[],
  path: string,
  remote: Json,
  value: Json,
): void {
  let seenReplace = false;
  let seenTest = false;
  for (const patch of originals) {
    if (patch === null) continue;
    for (let j = 0; j < patch.length; j++) {
      const op = patch[j];
      if (op === undefined || op.path !== path) continue;
      if (op.op === 'replace') {
        patch[j] = { op: 'replace', path, value };
        seenReplace = true;
      } else if (op.op === 'test') {
        patch[j] = { op: 'test', path, value: seenReplace || seenTest ? value : remote };
        seenTest = true;
      }
    }
  }
}

/**
 * Makes every local replace of one cell write `value`; the first test keeps the remote value it
 * checks, later tests check `value` (what the previous replace now writes).
 */
function overrideCell(patches: PatchOp[][], path: string, value: Json): void {
  let seenReplace = false;
  for (const patch of patches) {
    for (let j = 0; j < patch.length; j++) {
      const op = patch[j];
      if (op === undefined || op.path !== path) continue;
      if (op.op === 'replace') {
        patch[j] = { op: 'replace', path, value };
        seenReplace = true;
      } else if (op.op === 'test' && seenReplace) {
        patch[j] = { op: 'test', path, value };
      }
    }
  }
}

/**
 * The rows a local entry removes that the server updated since `previous` (the base the entries were
 * made on): present in both documents with different values. Each row is reported once.
 */
function deletesOfUpdatedRows(
  previous: CompactDoc,
  doc: CompactDoc,
  entries: readonly SyncOutboxEntry[],
): DeleteConflict[] {
  const removed: { table: string; key: string }[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    for (const op of e.ops) {
      if (op.op !== 'remove') continue;
      let target: ReturnType<typeof parseKeyedPath>;
      try {
        target = parseKeyedPath(op.path);
      } catch {
        continue; // not a keyed path: rebase reports it
      }
      if (target.target !== 'row' || target.row === undefined || seen.has(op.path)) continue;
      seen.add(op.path);
      removed.push({ table: target.table, key: target.row });
    }
  }
  if (removed.length === 0) return [];
  const tables = new Set(removed.map((r) => r.table));
  const before = keyedTables(previous, tables);
  const after = keyedTables(doc, tables);
  const out: DeleteConflict[] = [];
  for (const { table, key } of removed) {
    const old = rowOf(before, table, key);
    const now = rowOf(after, table, key);
    if (old === undefined || now === undefined || jsonEqual(old as Json, now as Json)) continue;
    out.push({ kind: 'row_updated', table, key, local: old as Json, remote: now as Json });
  }
  return out;
}

/** The keyed form of some tables of `doc` (only those, so a pull does not convert the whole base twice). */
function keyedTables(doc: CompactDoc, names: ReadonlySet<string>): KeyedDoc {
  const tables: CompactDoc['tables'] = {};
  for (const name of names) {
    if (Object.hasOwn(doc.tables, name)) {
      Object.defineProperty(tables, name, { value: doc.tables[name], enumerable: true, writable: true });
    }
  }
  return toKeyed({ version: 1, tables });
}

function rowOf(doc: KeyedDoc, table: string, key: string): Row | undefined {
  const t = Object.hasOwn(doc.tables, table) ? doc.tables[table] : undefined;
  return t !== undefined && Object.hasOwn(t.rows, key) ? t.rows[key] : undefined;
}

/** `value` as a row of `table` in `doc` with key `key`, or `undefined` when it does not fit. */
function fittingRow(doc: CompactDoc, table: string, key: string, value: Json): Row | undefined {
  const schema = Object.hasOwn(doc.tables, table) ? doc.tables[table]?.schema : undefined;
  if (schema === undefined) return undefined;
  try {
    const row = normalizeRow(schema, value, { table, key });
    return rowKey(schema, row, table) === key ? row : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps a row deleted locally: removes every local `remove` of it; with `row`, the first removal
 * becomes a `replace` writing `row` instead.
 */
function keepRow(patches: (PatchOp[] | null)[], path: string, row: Row | undefined): void {
  let replaced = false;
  for (let i = 0; i < patches.length; i++) {
    const patch = patches[i];
    if (patch === null || patch === undefined) continue;
    const next: PatchOp[] = [];
    for (const op of patch) {
      if (op.op === 'remove' && op.path === path) {
        if (row !== undefined && !replaced) {
          next.push({ op: 'replace', path, value: row as Json });
          replaced = true;
        }
        continue;
      }
      next.push(op);
    }
    patches[i] = next;
  }
}
