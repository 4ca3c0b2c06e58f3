/**
 * {@link compile}: a keyed patch → an index-based RFC 6902 patch against a given compact base.
 *
 * Row ops on a table whose schema the patch leaves alone compile one for one:
 * - `add /tables/t/rows/k`           → `add /tables/t/rows/-` (appended; the compact row array)
 * - `replace /tables/t/rows/k`       → `replace /tables/t/rows/{i}`
 * - `remove /tables/t/rows/k`        → `remove /tables/t/rows/{i}`
 * - `replace /tables/t/rows/k/f`     → `replace /tables/t/rows/{i}/{j}`
 * - `test …/rows/k/f`                → checked here, not emitted: the document-level `updated_at`
 *   check already guarantees the server holds exactly `base`.
 * Ops that replace the same value are checked and omitted. Indexes come from a key → slot map built
 * once per table (O(n)) and a Fenwick tree of live slots (O(log n) per op), so removals shift later
 * indexes without a rescan.
 *
 * A table touched by a table-level op (create, drop, schema change, new field) changes every row's
 * layout; its ops are applied in keyed form and the table is emitted once, at the end, as
 * `add`/`replace`/`remove /tables/t` (rows in base order, new rows after).
 */

import { rowFromArray, rowToArray, tableToKeyed } from './convert.js';
import { Fenwick } from './fenwick.js';
import { getOwn, hasOwn, jsonEqual, setOwn } from './json.js';
import {
  applyParsedOp,
  badPatch,
  checkCellOp,
  checkRowValue,
  KeyedDraft,
  type ParsedOp,
  parseKeyedOp,
} from './keyed.js';
import { escapePointer } from './pointer.js';
import { keyOfArray, schemaInfo } from './schema-info.js';
import type { CompactDoc, CompactTable, Json, KeyedDoc, KeyedTable, PatchOp, Row } from './types.js';

class TableCursor {
  private readonly slots = new Map<string, number>();
  private readonly fenwick: Fenwick;
  private readonly touched = new Map<number, Row>();
  private readonly fieldIndex: ReadonlyMap<string, number>;
  private next: number;
  readonly prefix: string;

  constructor(
    readonly name: string,
    readonly table: CompactTable,
    adds: number,
  ) {
    const { schema, rows } = table;
    const info = schemaInfo(schema);
    for (let i = 0; i < rows.length; i++) this.slots.set(keyOfArray(info, rows[i] as Json[]), i);
    this.next = rows.length;
    this.fenwick = new Fenwick(rows.length + adds, rows.length);
    this.fieldIndex = info.index;
    this.prefix = `/tables/${escapePointer(name)}/rows/`;
  }

  private slotOf(p: ParsedOp): number {
    const slot = this.slots.get(p.path.row as string);
    if (slot === undefined)
      throw badPatch(p.index, p.op, 'no such row', {
        table: this.name,
        key: p.path.row,
        field: p.path.field,
      });
    return slot;
  }

  private current(slot: number): Row {
    return this.touched.get(slot) ?? rowFromArray(this.table.schema, this.table.rows[slot] as Json[]);
  }

  compile(p: ParsedOp, out: PatchOp[]): void {
    const { op } = p;
    const { schema } = this.table;
    const key = p.path.row as string;
    if (p.path.target === 'row') {
      if (op.op === 'add') {
        if (this.slots.has(key)) throw badPatch(p.index, op, 'row already exists', { table: this.name, key });
        const row = checkRowValue(p, schema);
        const slot = this.next++;
        this.slots.set(key, slot);
        this.fenwick.add(slot, 1);
        this.touched.set(slot, row);
        out.push({ op: 'add', path: `${this.prefix}-`, value: rowToArray(schema, row) });
        return;
      }
      const slot = this.slotOf(p);
      const path = this.prefix + this.fenwick.before(slot);
      if (op.op === 'remove') {
        this.slots.delete(key);
        this.fenwick.add(slot, -1);
        this.touched.delete(slot);
        out.push({ op: 'remove', path });
        return;
      }
      const row = checkRowValue(p, schema);
      if (jsonEqual(this.current(slot), row)) return;
      this.touched.set(slot, row);
      out.push({ op: 'replace', path, value: rowToArray(schema, row) });
      return;
    }
    // cell: replace or test
    const field = p.path.field as string;
    const slot = this.slotOf(p);
    const row = this.current(slot);
    if (!checkCellOp(p, schema, row)) return;
    const value = (op as { value: Json }).value;
    this.touched.set(slot, { ...row, [field]: value });
    out.push({
      op: 'replace',
      path: `${this.prefix}${this.fenwick.before(slot)}/${this.fieldIndex.get(field)}`,
      value,
    });
  }
}

function emitRewritten(
  name: string,
  base: CompactTable | undefined,
  final: KeyedTable | undefined,
  out: PatchOp[],
): void {
  const path = `/tables/${escapePointer(name)}`;
  if (final === undefined) {
    if (base !== undefined) out.push({ op: 'remove', path });
    return;
  }
  const rows: Json[][] = [];
  const emitted = new Set<string>();
  if (base !== undefined && sameKey(base, final)) {
    const info = schemaInfo(base.schema);
    for (const values of base.rows) {
      const key = keyOfArray(info, values);
      const row = getOwn(final.rows, key);
      if (row === undefined) continue;
      emitted.add(key);
      rows.push(rowToArray(final.schema, row));
    }
  }
  for (const key of Object.keys(final.rows)) {
    if (!emitted.has(key)) rows.push(rowToArray(final.schema, final.rows[key] as Row));
  }
  out.push({
    op: base === undefined ? 'add' : 'replace',
    path,
    value: { schema: final.schema, rows } as unknown as Json,
  });
}

function sameKey(base: CompactTable, final: KeyedTable): boolean {
  const a = base.schema.primaryKey;
  const b = final.schema.primaryKey;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/**
 * Compiles a keyed patch into an index-based RFC 6902 patch against the compact document `base`
 * (see the module docs). The keyed ops must be valid for `base`: the same checks as `applyKeyed`
 * run here, so an invalid op throws `bad_patch` naming its index. Cost: O(n) per touched table to
 * index it, then O(log n) per row op.
 *
 * @example
 * ```ts
 * const ops = compile([{ op: 'remove', path: keyedPath.row('projects', 'p_1') }], base);
 * // [{ op: 'remove', path: '/tables/projects/rows/0' }]
 * await supabase.rpc('userdb_patch', { ops, expected_updated_at, client_id, batch_seq });
 * ```
 */
export function compile(ops: readonly PatchOp[], base: CompactDoc): PatchOp[] {
  const parsed = ops.map((op, i) => parseKeyedOp(op, i));
  const rewritten = new Set<string>();
  const adds = new Map<string, number>();
  for (const p of parsed) {
    const { target, table } = p.path;
    if (target === 'table' || target === 'schema' || target === 'fields') rewritten.add(table);
    else if (p.op.op === 'add') adds.set(table, (adds.get(table) ?? 0) + 1);
  }
  const out: PatchOp[] = [];
  const cursors = new Map<string, TableCursor>();
  const rewrittenBase: Record<string, KeyedTable> = {};
  for (const name of rewritten) {
    const t = getOwn(base.tables, name);
    if (t !== undefined) setOwn(rewrittenBase, name, tableToKeyed(name, t));
  }
  const draft = new KeyedDraft({ version: 1, tables: rewrittenBase } satisfies KeyedDoc);
  for (const p of parsed) {
    const name = p.path.table;
    if (rewritten.has(name)) {
      applyParsedOp(draft, p);
      continue;
    }
    let cursor = cursors.get(name);
    if (cursor === undefined) {
      const t = getOwn(base.tables, name);
      if (t === undefined) throw badPatch(p.index, p.op, 'no such table', { table: name });
      cursor = new TableCursor(name, t, adds.get(name) ?? 0);
      cursors.set(name, cursor);
    }
    cursor.compile(p, out);
  }
  for (const name of rewritten) {
    const before = hasOwn(rewrittenBase, name) ? rewrittenBase[name] : undefined;
    const after = draft.get(name);
    if (after !== undefined && after === before) continue;
    emitRewritten(name, getOwn(base.tables, name), after, out);
  }
  return out;
}
