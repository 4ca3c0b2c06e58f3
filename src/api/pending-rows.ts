/**
 * The rows the pending outbox entries of a view touch, with their confirmed (server) values: what
 * lets a pulled change of such a row be applied to the view without rebuilding it from the base.
 *
 * A view shows base + pending entries. For a row no pending entry touches, the view shows the base
 * row, and a remote change applies to it directly. For a row pending entries touch, the view shows
 * the base row with those entries replayed on it; {@link PendingRows} remembers the base row (its
 * *pre-image*, captured when the first pending entry touches it: from the base at a rebuild, from the
 * view at a commit) and, per row, the seqs of the entries that touch it. A remote change then
 * updates the pre-image, and the row's entries (as the store rewrote them) are replayed on it with
 * the tolerant `rebase`, which gives exactly what a rebuild from base + outbox gives for that row.
 *
 * This holds only for row-local entries: an op on a table as a whole (create, drop, schema, field),
 * a row written under another key than its path's (which a rebase files under the other key), a
 * cell write of a primary-key field, or a malformed op make their table *blocked*: a remote change
 * of a blocked table rebuilds the view. A table also stays blocked (tainted) after such an entry is
 * acknowledged, until no pending entry touches it any more, since pre-images captured before it may
 * miss its effect.
 */
import {
  applyKeyed,
  type Json,
  jsonEqual,
  type KeyedTable,
  type PatchOp,
  parseKeyedPath,
  type RebaseConflict,
  type Row,
  rebase,
  type TableSchema,
} from '../doc/index.js';
import { getOwn, setOwn } from '../doc/json.js';
import { currentKey } from '../query/view.js';

/** The schema of a table as the view has it (`undefined`: no such table). */
export type SchemaOf = (table: string) => TableSchema | undefined;

/** Where a keyed op points: a table as a whole (`key` undefined) or one row; `null` when malformed. */
export interface OpTarget {
  table: string;
  key?: string | undefined;
}

/** One row touched by pending entries. */
export interface TrackedRow {
  readonly id: string;
  readonly table: string;
  readonly key: string;
  /** The confirmed (server) value of the row; `undefined`: the base has no such row. */
  pre: Row | undefined;
  /** The seqs of the pending entries that touch the row, ascending. */
  seqs: number[];
}

interface PendingEntry {
  ops: PatchOp[];
  /** Ids of the rows the entry touches (row-locally). */
  rows: string[];
  /** Tables the entry blocks (see the module docs). */
  blocks: string[];
  /** The entry holds a malformed op: every table is blocked while it is pending. */
  opaque: boolean;
}

/** A row's id: table and key, unambiguous. */
export function rowId(table: string, key: string): string {
  return `${table.length}:${table}/${key}`;
}

/** Where `op` points (see {@link OpTarget}); `null` for a path outside the keyed grammar. */
export function targetOf(op: PatchOp): OpTarget | null {
  try {
    const p = parseKeyedPath(op.path);
    return p.row === undefined ? { table: p.table } : { table: p.table, key: p.row };
  } catch {
    return null;
  }
}

/**
 * How one op of a pending entry touches the view: a row (row-locally), or a table it blocks, or
 * `null` when malformed.
 */
function classify(op: PatchOp, schemaOf: SchemaOf): { row?: string; table: string; key?: string } | null {
  let p: ReturnType<typeof parseKeyedPath>;
  try {
    p = parseKeyedPath(op.path);
  } catch {
    return null;
  }
  const table = p.table;
  if (p.row === undefined) return { table };
  const schema = schemaOf(table);
  if (schema === undefined) return { table };
  const key = p.row;
  if (p.target === 'row') {
    if (op.op === 'test') return { table };
    if (op.op !== 'remove' && currentKey(schema, table, op.value) !== key) return { table };
  } else if (op.op === 'replace' && schema.primaryKey.includes(p.field as string)) {
    return { table };
  }
  return { row: rowId(table, key), table, key };
}

/**
 * Replays `patches` (keyed ops of rows in `rows` only) tolerantly on the given confirmed rows and
 * returns each row's result and the conflicts, exactly as `View.replay` of the whole entries would
 * for those rows.
 */
export function replayRows(
  rows: Iterable<TrackedRow>,
  patches: readonly (readonly PatchOp[])[],
  schemaOf: SchemaOf,
): { rows: Map<string, Row | undefined>; conflicts: RebaseConflict[] } {
  const tables: Record<string, KeyedTable> = {};
  const list = [...rows];
  for (const r of list) {
    let t = getOwn(tables, r.table);
    if (t === undefined) {
      const schema = schemaOf(r.table);
      if (schema === undefined) throw new Error(`table "${r.table}" is gone`);
      t = { schema, rows: {} };
      setOwn(tables, r.table, t);
    }
    if (r.pre !== undefined) setOwn(t.rows, r.key, r.pre);
  }
  const out = new Map<string, Row | undefined>();
  const result = rebase({ version: 1, tables }, patches);
  for (const r of list) {
    const t = getOwn(result.doc.tables, r.table);
    out.set(r.id, t === undefined ? undefined : getOwn(t.rows, r.key));
  }
  return { rows: out, conflicts: result.conflicts };
}

/**
 * The pending entries of a view, by row (see the module docs). Entries are added in seq order, as
 * the view applies them; acknowledged entries fold into the pre-images.
 *
 * @example
 * ```ts
 * const pending = new PendingRows();
 * pending.reset((t, k) => baseView.getRow(t, k), entries, (t) => view.schemaOf(t));
 * pending.add(seq, ops, (t, k) => view.getRow(t, k), (t) => view.schemaOf(t)); // before view.apply(ops)
 * ```
 */
export class PendingRows {
  readonly #rows = new Map<string, TrackedRow>();
  /** In seq order. */
  readonly #entries = new Map<number, PendingEntry>();
  /** Per table: pending entries that block it. */
  readonly #blocks = new Map<string, number>();
  /** Per table: tracked rows. */
  readonly #counts = new Map<string, number>();
  readonly #tainted = new Set<string>();
  #opaque = 0;

  /** Forgets everything. */
  clear(): void {
    this.#rows.clear();
    this.#entries.clear();
    this.#blocks.clear();
    this.#counts.clear();
    this.#tainted.clear();
    this.#opaque = 0;
  }

  /** Starts over from a base and the entries replayed on it (a rebuild of the view). */
  reset(
    confirmed: (table: string, key: string) => Row | undefined,
    entries: readonly { seq: number; ops: PatchOp[] }[],
    schemaOf: SchemaOf,
  ): void {
    this.clear();
    for (const e of entries) this.add(e.seq, e.ops, confirmed, schemaOf);
  }

  /**
   * Records a pending entry, before the view applies it: rows it touches for the first time get
   * their confirmed value from `confirmed` (the view, which shows the base for such rows).
   */
  add(
    seq: number,
    ops: PatchOp[],
    confirmed: (table: string, key: string) => Row | undefined,
    schemaOf: SchemaOf,
  ): void {
    if (this.#entries.has(seq)) return;
    const entry: PendingEntry = { ops, rows: [], blocks: [], opaque: false };
    const rows = new Set<string>();
    const blocks = new Set<string>();
    for (const op of ops) {
      const c = classify(op, schemaOf);
      if (c === null) {
        entry.opaque = true;
        continue;
      }
      if (c.row === undefined) {
        if (!blocks.has(c.table)) entry.blocks.push(c.table);
        blocks.add(c.table);
        continue;
      }
      if (rows.has(c.row)) continue;
      rows.add(c.row);
      entry.rows.push(c.row);
      let r = this.#rows.get(c.row);
      if (r === undefined) {
        r = {
          id: c.row,
          table: c.table,
          key: c.key as string,
          pre: confirmed(c.table, c.key as string),
          seqs: [],
        };
        this.#rows.set(c.row, r);
        this.#counts.set(c.table, (this.#counts.get(c.table) ?? 0) + 1);
      }
      r.seqs.push(seq);
    }
    for (const t of entry.blocks) this.#blocks.set(t, (this.#blocks.get(t) ?? 0) + 1);
    if (entry.opaque) this.#opaque += 1;
    this.#entries.set(seq, entry);
  }

  /** True when a change of `table`'s rows cannot be applied row by row (see the module docs). */
  blocked(table: string): boolean {
    return this.#opaque > 0 || (this.#blocks.get(table) ?? 0) > 0 || this.#tainted.has(table);
  }

  /** True when pending entries touch `table` at all (a change of the table as a whole rebuilds). */
  touchesTable(table: string): boolean {
    return this.blocked(table) || (this.#counts.get(table) ?? 0) > 0;
  }

  /** The tracked row, if pending entries touch it. */
  row(table: string, key: string): TrackedRow | undefined {
    return this.#rows.get(rowId(table, key));
  }

  /** The tracked row of an id. */
  rowById(id: string): TrackedRow | undefined {
    return this.#rows.get(id);
  }

  /** The ops of a pending entry as last known, and the rows it touches. */
  entry(seq: number): { ops: PatchOp[]; rows: readonly string[] } | undefined {
    return this.#entries.get(seq);
  }

  /** True when acknowledging the entries up to `upTo` folds an entry touching one of `rows`. */
  acksTouch(upTo: number, rows: ReadonlySet<string>): boolean {
    if (rows.size === 0) return false;
    for (const [seq, e] of this.#entries) {
      if (seq > upTo) break;
      if (e.rows.some((id) => rows.has(id))) return true;
    }
    return false;
  }

  /**
   * The server acknowledged the entries up to `upTo` (an exact push: the base is now the old one
   * with them applied): their ops are replayed on the pre-images of their rows, and rows no pending
   * entry touches any more are forgotten. O(acknowledged ops).
   */
  ack(upTo: number, schemaOf: SchemaOf): void {
    const acked: [number, PendingEntry][] = [];
    for (const [seq, e] of this.#entries) {
      if (seq > upTo) break;
      acked.push([seq, e]);
    }
    if (acked.length === 0) return;
    for (const [, e] of acked) for (const t of e.blocks) this.#tainted.add(t);
    if (acked.some(([, e]) => e.opaque)) for (const r of this.#rows.values()) this.#tainted.add(r.table);
    const touched = new Set<string>();
    for (const [, e] of acked) for (const id of e.rows) touched.add(id);
    const replayable = [...touched]
      .map((id) => this.#rows.get(id))
      .filter((r): r is TrackedRow => r !== undefined && !this.blocked(r.table));
    if (replayable.length > 0) {
      const ids = new Set(replayable.map((r) => r.id));
      const patches = acked.map(([, e]) => restrict(e.ops, ids));
      const { rows } = replayRows(replayable, patches, schemaOf);
      for (const r of replayable) r.pre = rows.get(r.id);
    }
    // the acknowledged seqs are the smallest of each row's: one pass per row
    for (const id of touched) {
      const r = this.#rows.get(id);
      if (r === undefined) continue;
      let n = 0;
      while (n < r.seqs.length && (r.seqs[n] as number) <= upTo) n++;
      r.seqs = r.seqs.slice(n);
      if (r.seqs.length === 0) this.#forget(r);
    }
    for (const [seq, e] of acked) {
      for (const t of e.blocks) this.#unblock(t);
      if (e.opaque) this.#opaque -= 1;
      this.#entries.delete(seq);
    }
    this.#untaint();
  }

  /**
   * Stores an entry as the store now holds it (rewritten by a rebase; `null`: deleted) and updates
   * the rows it touches. Returns false when the new form touches a row or table the old one did not
   * (then the tracker no longer describes the view: rebuild).
   */
  refresh(seq: number, ops: PatchOp[] | null, schemaOf: SchemaOf): boolean {
    const old = this.#entries.get(seq);
    if (old === undefined) return ops === null;
    if (ops === null) {
      this.#drop(seq, old);
      return true;
    }
    const next: PendingEntry = { ops, rows: [], blocks: [], opaque: false };
    const oldRows = new Set(old.rows);
    const oldBlocks = new Set(old.blocks);
    const rows = new Set<string>();
    const blocks = new Set<string>();
    for (const op of ops) {
      const c = classify(op, schemaOf);
      if (c === null) return false;
      if (c.row === undefined) {
        if (!oldBlocks.has(c.table)) return false;
        if (!blocks.has(c.table)) next.blocks.push(c.table);
        blocks.add(c.table);
      } else if (!rows.has(c.row)) {
        if (!oldRows.has(c.row)) return false;
        rows.add(c.row);
        next.rows.push(c.row);
      }
    }
    // rows and tables the rewritten entry no longer touches
    for (const id of old.rows) if (!rows.has(id)) this.#unlink(id, seq);
    for (const t of old.blocks) if (!blocks.has(t)) this.#unblock(t);
    if (old.opaque) this.#opaque -= 1;
    this.#entries.set(seq, next);
    this.#untaint();
    return true;
  }

  /** Number of tracked rows (for tests and diagnostics). */
  get size(): number {
    return this.#rows.size;
  }

  #drop(seq: number, e: PendingEntry): void {
    for (const id of e.rows) this.#unlink(id, seq);
    for (const t of e.blocks) this.#unblock(t);
    if (e.opaque) this.#opaque -= 1;
    this.#entries.delete(seq);
  }

  #unlink(id: string, seq: number): void {
    const r = this.#rows.get(id);
    if (r === undefined) return;
    r.seqs = r.seqs.filter((s) => s !== seq);
    if (r.seqs.length === 0) this.#forget(r);
  }

  #forget(r: TrackedRow): void {
    this.#rows.delete(r.id);
    const n = (this.#counts.get(r.table) ?? 1) - 1;
    if (n <= 0) this.#counts.delete(r.table);
    else this.#counts.set(r.table, n);
  }

  #unblock(table: string): void {
    const n = (this.#blocks.get(table) ?? 1) - 1;
    if (n <= 0) this.#blocks.delete(table);
    else this.#blocks.set(table, n);
  }

  #untaint(): void {
    for (const t of [...this.#tainted]) {
      if ((this.#counts.get(t) ?? 0) === 0 && (this.#blocks.get(t) ?? 0) === 0) this.#tainted.delete(t);
    }
  }
}

/** The ops of `ops` on rows of `ids` (in order). */
export function restrict(ops: readonly PatchOp[], ids: ReadonlySet<string>): PatchOp[] {
  return ops.filter((op) => {
    const t = targetOf(op);
    return t !== null && t.key !== undefined && ids.has(rowId(t.table, t.key));
  });
}

/** The ops of `ops` not on rows of `ids` (in order; malformed ops included). */
export function outside(ops: readonly PatchOp[], ids: ReadonlySet<string>): PatchOp[] {
  return ops.filter((op) => {
    const t = targetOf(op);
    return t === null || t.key === undefined || !ids.has(rowId(t.table, t.key));
  });
}

/** Applies a confirmed (server) keyed row op strictly to a tracked row's pre-image. */
export function applyToPre(row: TrackedRow, op: PatchOp, schema: TableSchema): void {
  const rows: Record<string, Row> = {};
  if (row.pre !== undefined) setOwn(rows, row.key, row.pre);
  const tables: Record<string, KeyedTable> = {};
  setOwn(tables, row.table, { schema, rows });
  const out = applyKeyed({ version: 1, tables }, [op]);
  const t = getOwn(out.tables, row.table);
  row.pre = t === undefined ? undefined : getOwn(t.rows, row.key);
}

/** True when two op lists are equal. */
export function sameOps(a: readonly PatchOp[], b: readonly PatchOp[]): boolean {
  return jsonEqual(a as unknown as Json, b as unknown as Json);
}
