/**
 * Applying the server's change log to a compact base: each change's index-based ops are checked,
 * applied, and translated into the keyed ops a view applies (`View.apply`), at a cost that follows
 * the change, not the document.
 *
 * Row-level ops (`add|replace|remove /tables/t/rows/i`, `replace /tables/t/rows/i/j`, `test …`)
 * are applied in place on one working copy of each touched table's rows per chain; every new or
 * changed row is validated on its own (types, key) and added keys are checked for uniqueness.
 * Any other op (a whole table, a schema, a field) is applied with `applyCompact` and its table is
 * re-validated and re-emitted whole (`remove` + `add /tables/t`). A change that touches the root or
 * `/tables` itself is not translated: its view ops are `null` (views rebuild).
 */

import { rowFromArray } from '../doc/convert.js';
import {
  applyCompact,
  type CompactDoc,
  type CompactTable,
  escapePointer,
  jsonEqual,
  keyedOp,
  type PatchOp,
  parseCompactDoc,
  parseKeyedPath,
  tableToKeyed,
} from '../doc/index.js';
import { getOwn, setOwn } from '../doc/json.js';
import { splitPointer } from '../doc/pointer.js';
import { keyOfArray, schemaInfo } from '../doc/schema-info.js';
import type { Json } from '../doc/types.js';
import { InvalidChangeError, type RemoteDelta } from '../remote/index.js';
import type { OwnWrite } from './ports.js';

/** A cell's id: escaped table, row key and field joined by `/` (unambiguous). */
export function cellId(table: string, key: string, field: string): string {
  return `${escapePointer(table)}/${escapePointer(key)}/${escapePointer(field)}`;
}

/** Batches of more ops are not translated to remember own writes (an offline backlog). */
const MAX_REMEMBERED_OPS = 1000;
const CELL_OP = /^\/tables\/[^/]+\/rows\/\d+\/\d+$/;

/**
 * The cells a batch of index-based ops (an own push, applied on `doc`) wrote, with their values:
 * cell replaces only, and nothing for batches of more than 1,000 ops (translating those would
 * cost O(batch)).
 *
 * @example
 * ```ts
 * await store.commitPush({ ...args, ownWrites: cellWrites(base.doc, ops) });
 * ```
 */
export function cellWrites(doc: CompactDoc, ops: readonly PatchOp[]): OwnWrite[] {
  if (ops.length > MAX_REMEMBERED_OPS || !ops.some((op) => op.op === 'replace' && CELL_OP.test(op.path))) {
    return [];
  }
  let keyed: PatchOp[] | null;
  try {
    keyed =
      applyChain(doc, [{ before: '', after: '', ops: [...ops], clientId: null, batchSeq: null }]).applied[0]
        ?.keyed ?? null;
  } catch {
    return [];
  }
  const out = new Map<string, Json>();
  for (const op of keyed ?? []) {
    if (op.op !== 'replace') continue;
    let p: ReturnType<typeof parseKeyedPath>;
    try {
      p = parseKeyedPath(op.path);
    } catch {
      continue;
    }
    if (p.target !== 'cell') continue;
    const id = cellId(p.table, p.row as string, p.field as string);
    out.delete(id);
    out.set(id, op.value);
  }
  return [...out].map(([cell, value]) => ({ cell, value }));
}

/**
 * What a foreign change's keyed ops overwrote, as own-write names: cell ids, row and table
 * prefixes (ending with `/`), or `''` (everything: a change the view cannot apply op by op).
 */
export function overwrittenBy(keyed: readonly PatchOp[] | null): string[] {
  if (keyed === null) return [''];
  const out = new Set<string>();
  for (const op of keyed) {
    if (op.op === 'test') continue;
    let p: ReturnType<typeof parseKeyedPath>;
    try {
      p = parseKeyedPath(op.path);
    } catch {
      return [''];
    }
    if (p.target === 'cell') out.add(cellId(p.table, p.row as string, p.field as string));
    else if (p.target === 'row') out.add(`${escapePointer(p.table)}/${escapePointer(p.row as string)}/`);
    else out.add(`${escapePointer(p.table)}/`);
  }
  return [...out];
}

/** A change of the chain as the store logs it. */
export interface AppliedChange {
  before: string;
  after: string;
  /** The index-based ops, as the server applied them (replayed on the stored base at start-up). */
  ops: PatchOp[];
  /** The keyed ops a view applies to go from the document before to the one after; `null`: rebuild. */
  keyed: PatchOp[] | null;
  clientId: string | null;
  batchSeq: number | null;
  /** Cells this change overwrote, with the value its writer expected there (its `test` ops). */
  tests: CellTest[];
}

/** A `test` op of a change, in keyed terms: the writer expected `expected` in that cell. */
export interface CellTest {
  table: string;
  key: string;
  field: string;
  expected: Json;
  /** The value the change wrote there (`undefined` when it did not replace the cell). */
  written?: Json | undefined;
}

interface WorkingTable {
  table: CompactTable;
  /** Own copy of the rows (made on first write). */
  owned: boolean;
  keys: Map<string, number> | null;
}

function invalid(where: string, message: string): InvalidChangeError {
  return new InvalidChangeError(`server change ${where}: ${message}`);
}

const INDEX_RE = /^(?:0|[1-9]\d*)$/;

/**
 * Applies a continuous chain of changes to `doc`. Returns the new document and, per change, its
 * keyed form. Throws {@link InvalidChangeError} when a change does not apply or leaves an
 * invalid document (the caller then asks for the whole document).
 *
 * @example
 * ```ts
 * const { doc: next, applied } = applyChain(base.doc, answer.changes);
 * view.apply(applied[0].keyed);
 * ```
 */
export function applyChain(
  doc: CompactDoc,
  changes: readonly RemoteDelta[],
): { doc: CompactDoc; applied: AppliedChange[] } {
  const working = new Map<string, WorkingTable>();
  let current: CompactDoc = doc;
  const flush = (): CompactDoc => {
    if (working.size === 0) return current;
    const tables = { ...current.tables };
    for (const [name, w] of working) setOwn(tables, name, w.table);
    working.clear();
    current = { ...current, tables };
    return current;
  };
  const applied: AppliedChange[] = [];
  for (const [ci, change] of changes.entries()) {
    const where = `${ci} (${change.before} → ${change.after})`;
    if (change.ops === null) throw invalid(where, 'its ops are unknown');
    const keyed: PatchOp[] = [];
    const tests: CellTest[] = [];
    let translatable = true;
    const rewritten = new Set<string>();
    const before = new Map<string, boolean>();
    for (const [oi, op] of change.ops.entries()) {
      const at = `${where}, op ${oi} (${op.op} ${op.path})`;
      let segs: string[];
      try {
        segs = splitPointer(op.path);
      } catch {
        throw invalid(at, 'not a JSON pointer');
      }
      const name = segs[1];
      if (segs[0] !== 'tables' || name === undefined) {
        // the root, /version or /tables: not a table-local change
        const next = applyWhole(flush(), op, at);
        current = next;
        translatable = false;
        continue;
      }
      if (!before.has(name)) before.set(name, Object.hasOwn(current.tables, name) || working.has(name));
      const w = rowLevel(segs) && !rewritten.has(name) ? tableOf(working, current, name) : undefined;
      if (w === undefined || !applyRowOp(w, name, segs, op, keyed, tests, at)) {
        // table-level (or a row op on a table rewritten in this change): apply it whole
        current = applyWhole(flush(), op, at);
        rewritten.add(name);
      }
    }
    if (rewritten.size > 0) {
      const doc2 = flush();
      for (const name of rewritten) {
        const table = getOwn(doc2.tables, name);
        // drop the table's row ops emitted before: the whole table replaces them
        const prefix = `/tables/${name.replaceAll('~', '~0').replaceAll('/', '~1')}/`;
        for (let i = keyed.length - 1; i >= 0; i--) {
          if ((keyed[i] as PatchOp).path.startsWith(prefix)) keyed.splice(i, 1);
        }
        if (before.get(name) === true) keyed.push(keyedOp.removeTable(name));
        if (table !== undefined) {
          let checked: CompactDoc;
          try {
            checked = parseCompactDoc({ version: 1, tables: { [name]: table } });
          } catch (e) {
            throw invalid(where, `table "${name}" is invalid afterwards: ${(e as Error).message}`);
          }
          const clean = getOwn(checked.tables, name) as CompactTable;
          current = { ...current, tables: { ...current.tables, [name]: clean } };
          keyed.push(keyedOp.addTable(name, tableToKeyed(name, clean)));
        }
      }
    }
    applied.push({
      before: change.before,
      after: change.after,
      ops: change.ops,
      keyed: translatable ? keyed : null,
      clientId: change.clientId,
      batchSeq: change.batchSeq,
      tests,
    });
  }
  const result = flush();
  if (!translatable(applied)) {
    // a change of the root: validate the whole document once
    try {
      return { doc: parseCompactDoc(result), applied };
    } catch (e) {
      throw invalid('chain', `the document is invalid afterwards: ${(e as Error).message}`);
    }
  }
  return { doc: result, applied };
}

function translatable(applied: readonly AppliedChange[]): boolean {
  return applied.every((a) => a.keyed !== null);
}

function rowLevel(segs: readonly string[]): boolean {
  return segs[2] === 'rows' && (segs.length === 4 || segs.length === 5);
}

function tableOf(
  working: Map<string, WorkingTable>,
  doc: CompactDoc,
  name: string,
): WorkingTable | undefined {
  let w = working.get(name);
  if (w === undefined) {
    const table = Object.hasOwn(doc.tables, name) ? doc.tables[name] : undefined;
    if (table === undefined) return undefined;
    w = { table, owned: false, keys: null };
    working.set(name, w);
  }
  return w;
}

function applyWhole(doc: CompactDoc, op: PatchOp, at: string): CompactDoc {
  if (op.path === '') {
    // a whole-document write (`userdb_set` of the empty path): validated whole at the end
    if (op.op === 'replace' || op.op === 'add') return op.value as unknown as CompactDoc;
    if (op.op === 'test') {
      if (!jsonEqual(doc as unknown as Json, op.value)) throw invalid(at, 'test failed');
      return doc;
    }
    throw invalid(at, 'the document cannot be removed');
  }
  try {
    return applyCompact(doc, [op]);
  } catch (e) {
    throw invalid(at, (e as Error).message);
  }
}

function own(w: WorkingTable): Json[][] {
  if (!w.owned) {
    w.table = { schema: w.table.schema, rows: w.table.rows.slice() };
    w.owned = true;
  }
  return w.table.rows;
}

function keysOf(w: WorkingTable): Map<string, number> {
  if (w.keys === null) {
    const info = schemaInfo(w.table.schema);
    const keys = new Map<string, number>();
    for (const values of w.table.rows) {
      const k = keyOfArray(info, values);
      keys.set(k, (keys.get(k) ?? 0) + 1);
    }
    w.keys = keys;
  }
  return w.keys;
}

function dropKey(w: WorkingTable, key: string): void {
  if (w.keys === null) return;
  const n = (w.keys.get(key) ?? 0) - 1;
  if (n <= 0) w.keys.delete(key);
  else w.keys.set(key, n);
}

function addKey(w: WorkingTable, name: string, key: string, at: string): void {
  const keys = keysOf(w);
  if (keys.has(key)) throw invalid(at, `table "${name}" would hold row key ${key} twice`);
  keys.set(key, 1);
}

/** Validates one compact row of table `name` (types and key) and returns its clean copy. */
function checkRow(name: string, w: WorkingTable, values: unknown, at: string): Json[] {
  try {
    const doc = parseCompactDoc({
      version: 1,
      tables: { [name]: { schema: w.table.schema, rows: [values] } },
    });
    return (getOwn(doc.tables, name) as CompactTable).rows[0] as Json[];
  } catch (e) {
    throw invalid(at, (e as Error).message);
  }
}

/**
 * Applies one row-level op in place and appends its keyed form. Returns false when the op is not
 * one of the row-level shapes (the caller applies it whole).
 */
function applyRowOp(
  w: WorkingTable,
  name: string,
  segs: readonly string[],
  op: PatchOp,
  keyed: PatchOp[],
  tests: CellTest[],
  at: string,
): boolean {
  const info = schemaInfo(w.table.schema);
  const rows = w.table.rows;
  const seg = segs[3] as string;
  if (segs.length === 4) {
    if (op.op === 'add') {
      const i = seg === '-' ? rows.length : INDEX_RE.test(seg) ? Number(seg) : -1;
      if (i < 0 || i > rows.length) throw invalid(at, 'no such row index');
      const values = checkRow(name, w, op.value, at);
      const key = keyOfArray(info, values);
      addKey(w, name, key, at);
      own(w).splice(i, 0, values);
      keyed.push(keyedOp.addRow(name, key, rowFromArray(w.table.schema, values)));
      return true;
    }
    if (!INDEX_RE.test(seg) || Number(seg) >= rows.length) throw invalid(at, 'no such row index');
    const i = Number(seg);
    const old = rows[i] as Json[];
    const oldKey = keyOfArray(info, old);
    if (op.op === 'remove') {
      own(w).splice(i, 1);
      dropKey(w, oldKey);
      keyed.push(keyedOp.removeRow(name, oldKey));
      return true;
    }
    if (op.op === 'test') {
      if (!jsonEqual(old, op.value)) throw invalid(at, 'test failed');
      return true;
    }
    // replace
    const values = checkRow(name, w, op.value, at);
    const key = keyOfArray(info, values);
    if (key === oldKey) {
      own(w)[i] = values;
      keyed.push(keyedOp.replaceRow(name, key, rowFromArray(w.table.schema, values)));
    } else {
      keysOf(w); // built from the rows before this op
      dropKey(w, oldKey);
      addKey(w, name, key, at);
      own(w)[i] = values;
      keyed.push(
        keyedOp.removeRow(name, oldKey),
        keyedOp.addRow(name, key, rowFromArray(w.table.schema, values)),
      );
    }
    return true;
  }
  // a cell: /tables/t/rows/i/j
  const cell = segs[4] as string;
  if (!INDEX_RE.test(seg) || Number(seg) >= rows.length) throw invalid(at, 'no such row index');
  const field = INDEX_RE.test(cell) ? w.table.schema.fields[Number(cell)] : undefined;
  if (field === undefined) throw invalid(at, 'no such field index');
  const i = Number(seg);
  const j = Number(cell);
  const old = rows[i] as Json[];
  const oldKey = keyOfArray(info, old);
  if (op.op === 'test') {
    if (!jsonEqual(old[j] ?? null, op.value)) throw invalid(at, 'test failed');
    tests.push({ table: name, key: oldKey, field: field.name, expected: op.value });
    return true;
  }
  if (op.op !== 'replace') return false; // add/remove of a cell changes the row's shape: invalid, applied whole
  const values = checkRow(
    name,
    w,
    old.map((v, x) => (x === j ? op.value : v)),
    at,
  );
  const key = keyOfArray(info, values);
  if (key !== oldKey) {
    keysOf(w); // built from the rows before this op
    dropKey(w, oldKey);
    addKey(w, name, key, at);
  }
  own(w)[i] = values;
  for (const t of tests) {
    if (t.table === name && t.key === oldKey && t.field === field.name) t.written = values[j] ?? null;
  }
  if (key === oldKey) {
    keyed.push(keyedOp.setCell(name, key, field.name, values[j] ?? null));
  } else {
    keyed.push(
      keyedOp.removeRow(name, oldKey),
      keyedOp.addRow(name, key, rowFromArray(w.table.schema, values)),
    );
  }
  return true;
}
