/**
 * The in-memory keyed view of the document: one `Map` of rows per table, so that a one-row change
 * costs O(1) whatever the table's size (the keyed form's plain objects would have to be copied).
 *
 * Rows are deeply frozen; a changed row is a new object and every other row keeps its identity.
 *
 * - {@link View}: the committed state, the one live queries read.
 * - {@link Overlay}: a transaction's pending changes on top of a View (what reads inside the
 *   transaction see); discarded on rollback, never visible to subscribers.
 *
 * Both apply keyed ops with exactly the semantics of the document module's `applyKeyed` (strict):
 * each op is applied by `applyKeyed` to a tiny document holding only the row (or table) it names.
 */
import {
  applyKeyed,
  type CompactDoc,
  type CompactTable,
  isValidValue,
  type Json,
  jsonEqual,
  type KeyedDoc,
  type KeyedTable,
  keyFields,
  keyOfArray,
  type PatchOp,
  parseKeyedPath,
  type RebaseConflict,
  type Row,
  rebase,
  rowKey,
  type SchemaInfo,
  sameSchema,
  schemaInfo,
  type TableSchema,
} from '../doc/index.js';
import type { ChangeSet } from './changes.js';
import { deepFreeze } from './freeze.js';
import { type Entry, INDEXABLE_TYPES, type IndexField, SortedIndex } from './indexes.js';

/** Read access to a keyed document (the committed view, or a transaction's overlay on it). */
export interface ReadLayer {
  /** Names of the existing tables. */
  tableNames(): string[];
  /** The schema of `table`, or `undefined` when there is no such table. */
  schemaOf(table: string): TableSchema | undefined;
  /** The row of `table` with row key `key`. */
  getRow(table: string, key: string): Row | undefined;
  /** Every row of `table` (none when there is no such table). */
  rows(table: string): Iterable<Row>;
  /** `[rowKey, row]` pairs of `table`. */
  entries(table: string): Iterable<[string, Row]>;
  /** The number of rows of `table`. */
  size(table: string): number;
  /** The secondary indexes of `table` that reflect this layer (none when it has none). */
  indexes?(table: string): readonly SortedIndex[];
}

/** A layer keyed ops can be applied to. */
interface WriteLayer extends ReadLayer {
  setRow(table: string, key: string, row: Row | undefined): void;
  setTable(table: string, value: KeyedTable | undefined): void;
}

function single<T>(key: string, value: T): Record<string, T> {
  return Object.fromEntries([[key, value]]) as Record<string, T>;
}

function own<T>(obj: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function keyedTableOf(layer: ReadLayer, table: string, schema: TableSchema): KeyedTable {
  const rows: Record<string, Row> = {};
  for (const [key, row] of layer.entries(table)) {
    Object.defineProperty(rows, key, { value: row, writable: true, enumerable: true, configurable: true });
  }
  return { schema, rows };
}

/**
 * Applies one keyed op to `layer`, strictly (throws the document module's errors: `bad_patch`
 * `UserDbError`, `SchemaError`). Returns the name of the table when the layer changed.
 */
function applyOp(layer: WriteLayer, op: PatchOp): string | undefined {
  const path = parseKeyedPath(op.path);
  const table = path.table;
  const schema = layer.schemaOf(table);
  if ((path.target === 'row' || path.target === 'cell') && schema !== undefined) {
    const key = path.row as string;
    const existing = layer.getRow(table, key);
    const mini: KeyedDoc = {
      version: 1,
      tables: single(table, { schema, rows: existing === undefined ? {} : single(key, existing) }),
    };
    const out = applyKeyed(mini, [op]);
    if (out === mini) return undefined;
    const next = own((own(out.tables, table) as KeyedTable).rows, key);
    if (next === existing) return undefined;
    layer.setRow(table, key, next === undefined ? undefined : deepFreeze(next));
    return table;
  }
  const mini: KeyedDoc = {
    version: 1,
    tables: schema === undefined ? {} : single(table, keyedTableOf(layer, table, schema)),
  };
  const out = applyKeyed(mini, [op]);
  if (out === mini) return undefined;
  const next = own(out.tables, table);
  if (next !== undefined) for (const key of Object.keys(next.rows)) deepFreeze(next.rows[key] as Row);
  layer.setTable(table, next);
  return table;
}

/**
 * The key a written row gets in `schema` when a rebase files it (values that do not fit their type
 * count as null), if any.
 */
export function currentKey(schema: TableSchema, table: string, value: Json): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const row: Row = {};
  for (const f of schema.fields) {
    const v = Object.hasOwn(value, f.name) ? (value[f.name] as Json) : null;
    Object.defineProperty(row, f.name, {
      value: isValidValue(f.type, v) ? v : null,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  try {
    return rowKey(schema, row, table);
  } catch {
    return undefined;
  }
}

/** True for a string that is an array index, which a plain object lists first, in numeric order. */
function isIndexKey(key: string): boolean {
  const c = key.charCodeAt(0);
  if (c < 48 || c > 57) return false;
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}

/** How the rows of one compact table become keyed rows. */
class RowShape {
  private readonly names: string[];
  private readonly special: number;
  /** The position of each field in the row arrays. */
  readonly position: ReadonlyMap<string, number>;

  constructor(schema: TableSchema) {
    this.names = schema.fields.map((f) => f.name);
    this.position = new Map(this.names.map((n, i) => [n, i]));
    this.special = this.names.indexOf('__proto__');
  }

  /** The frozen keyed row of `values` (its array and object cells frozen in place and shared). */
  row(values: readonly Json[]): Row {
    const row: Row = {};
    const names = this.names;
    for (let j = 0; j < names.length; j++) {
      const v = values[j] ?? null;
      if (typeof v === 'object' && v !== null) deepFreeze(v);
      if (j === this.special) {
        Object.defineProperty(row, '__proto__', {
          value: v,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else row[names[j] as string] = v;
    }
    return Object.freeze(row);
  }
}

/**
 * An entry read from a compact table: its keyed row is made (and frozen) when it is first read, so
 * that opening a database builds no row object a query does not read. Once made, the row is the
 * one object every later read returns.
 */
class CompactEntry implements Entry {
  private made: Row | undefined;

  constructor(
    readonly key: string,
    private values: readonly Json[] | undefined,
    public ord: number,
    private readonly shape: RowShape,
  ) {}

  get row(): Row {
    let row = this.made;
    if (row === undefined) {
      row = this.shape.row(this.values as readonly Json[]);
      this.made = row;
      this.values = undefined;
    }
    return row;
  }

  set row(row: Row) {
    this.made = row;
    this.values = undefined;
  }

  cell(name: string): Json {
    const values = this.values;
    if (values === undefined) {
      const row = this.made as Row;
      return Object.hasOwn(row, name) ? (row[name] as Json) : null;
    }
    const j = this.shape.position.get(name);
    return j === undefined ? null : (values[j] ?? null);
  }
}

/**
 * The entries of a valid compact table in the order the keyed form lists them (the order of a
 * plain object's keys: array-index keys first, in numeric order), their rows made on first read.
 */
function compactEntries(table: CompactTable, info: SchemaInfo, shape: RowShape): Map<string, Entry> {
  const map = new Map<string, Entry>();
  let indexKeys = false;
  let ord = 0;
  for (const values of table.rows) {
    const key = keyOfArray(info, values);
    const e = map.get(key);
    if (e !== undefined)
      e.row = shape.row(values); // as a second property write: the first position stays
    else map.set(key, new CompactEntry(key, values, ord++, shape));
    if (!indexKeys && isIndexKey(key)) indexKeys = true;
  }
  if (!indexKeys) return map;
  const ordered = new Map<string, Entry>();
  ord = 0;
  const first = [...map.values()].filter((e) => isIndexKey(e.key));
  first.sort((x, y) => Number(x.key) - Number(y.key));
  for (const e of first) {
    e.ord = ord++;
    ordered.set(e.key, e);
  }
  for (const e of map.values()) {
    if (isIndexKey(e.key)) continue;
    e.ord = ord++;
    ordered.set(e.key, e);
  }
  return ordered;
}

/**
 * Whether the rows of a valid compact table already come in the keyed form's order: no array-index
 * key, or array-index keys only as a prefix in increasing numeric order (as rows inserted with
 * increasing integer ids are). One pass, no key kept.
 */
function inKeyedOrder(table: CompactTable, info: SchemaInfo): boolean {
  let last = -1;
  let prefix = true;
  for (const values of table.rows) {
    const key = keyOfArray(info, values);
    if (!isIndexKey(key)) {
      prefix = false;
      continue;
    }
    const n = Number(key);
    if (!prefix || n <= last) return false;
    last = n;
  }
  return true;
}

/**
 * The rows of one view table by row key, in table order (each entry's `ord` increasing along it).
 *
 * A table read from a valid compact base whose rows already come in table order holds the base's
 * row arrays until a row is first looked up by key: scans and counts read the arrays, making each
 * entry once (the map built later takes the same entries over), so that opening a database keys no
 * row and makes no row object a query does not read.
 */
class TableRows {
  private map: Map<string, Entry> | undefined;
  /** Until the map is built: the rows' arrays in table order, and the entries made from them. */
  private source: readonly (readonly Json[])[] | undefined;
  private made: (Entry | undefined)[] | undefined;

  private constructor(
    map: Map<string, Entry> | undefined,
    source?: readonly (readonly Json[])[],
    private readonly info?: SchemaInfo,
    private readonly shape?: RowShape,
  ) {
    this.map = map;
    this.source = source;
    if (source !== undefined) this.made = new Array<Entry | undefined>(source.length);
  }

  /** Rows already keyed. */
  static of(map: Map<string, Entry>): TableRows {
    return new TableRows(map);
  }

  /** The rows of a valid compact table (see `View.fromCompact`). */
  static compact(name: string, table: CompactTable): TableRows {
    keyFields(table.schema, name);
    const info = schemaInfo(table.schema);
    const shape = new RowShape(table.schema);
    if (!inKeyedOrder(table, info)) return new TableRows(compactEntries(table, info, shape));
    return new TableRows(undefined, table.rows, info, shape);
  }

  /** Whether the rows are keyed yet (for tests). */
  get keyed(): boolean {
    return this.map !== undefined;
  }

  get size(): number {
    return this.map?.size ?? (this.source as readonly unknown[]).length;
  }

  get(key: string): Entry | undefined {
    return (this.map ?? this.build()).get(key);
  }

  set(key: string, entry: Entry): void {
    (this.map ?? this.build()).set(key, entry);
  }

  delete(key: string): boolean {
    return (this.map ?? this.build()).delete(key);
  }

  /** The entries in table order. */
  values(): IterableIterator<Entry> {
    return this.map?.values() ?? this.scan();
  }

  /** The row keys in table order. */
  *keys(): IterableIterator<string> {
    for (const e of this.values()) yield e.key;
  }

  private *scan(): IterableIterator<Entry> {
    const source = this.source as readonly (readonly Json[])[];
    for (let i = 0; i < source.length; i++) yield this.entryAt(i, source);
  }

  private entryAt(i: number, source: readonly (readonly Json[])[]): Entry {
    const made = this.made as (Entry | undefined)[];
    let e = made[i];
    if (e === undefined) {
      const values = source[i] as readonly Json[];
      e = new CompactEntry(keyOfArray(this.info as SchemaInfo, values), values, i, this.shape as RowShape);
      made[i] = e;
    }
    return e;
  }

  private build(): Map<string, Entry> {
    const source = this.source as readonly (readonly Json[])[];
    const map = new Map<string, Entry>();
    for (let i = 0; i < source.length; i++) {
      const e = this.entryAt(i, source);
      // a valid table has no duplicate key; were there one, the later row wins in the first place
      const first = map.get(e.key);
      if (first !== undefined) first.row = e.row;
      else map.set(e.key, e);
    }
    this.map = map;
    this.source = undefined;
    this.made = undefined;
    return map;
  }
}

interface ViewTable {
  schema: TableSchema;
  /** The rows in table order; each entry's `ord` increases in that order. */
  rows: TableRows;
  /** The `ord` the next new row gets. */
  next: number;
  indexes: SortedIndex[];
}

/** The index declarations of one table: lists of field names. */
export type IndexDefs = readonly (readonly string[])[];

/**
 * The committed in-memory document, with the secondary indexes declared for its tables (kept up to
 * date under every change: {@link View.apply}, {@link View.replay}, {@link View.replaceAll}).
 *
 * Every method that changes the view takes an optional {@link ChangeSet} that collects which rows
 * changed (old and new values), or which tables changed as a whole.
 *
 * @example
 * ```ts
 * const view = View.fromKeyed(toKeyed(base));
 * const changes = new ChangeSet();
 * view.apply([{ op: 'remove', path: '/tables/projects/rows/p_1' }], new Set(), changes); // Set { 'projects' }
 * ```
 */
export class View implements ReadLayer {
  private tables = new Map<string, ViewTable>();
  private readonly indexDefs = new Map<string, IndexDefs>();
  private collector: ChangeSet | undefined;

  /** A view holding `doc` (its rows are frozen in place). */
  static fromKeyed(doc: KeyedDoc): View {
    const view = new View();
    for (const name of Object.keys(doc.tables)) {
      const table = doc.tables[name] as KeyedTable;
      view.tables.set(name, view.makeTable(name, table.schema, Object.keys(table.rows), table.rows, true));
    }
    return view;
  }

  /**
   * A view holding the valid compact document `doc` (validate untrusted input with
   * `parseCompactDoc` first): the same content as `View.fromKeyed(toKeyed(doc))`, without the keyed
   * copy. Each row object is made (and frozen, its array and object cells in place) when it is
   * first read; until then the view holds the row's array.
   */
  static fromCompact(doc: CompactDoc): View {
    const view = new View();
    for (const name of Object.keys(doc.tables)) {
      const table = doc.tables[name] as CompactTable;
      const rows = TableRows.compact(name, table);
      const t: ViewTable = { schema: table.schema, rows, next: rows.size, indexes: [] };
      view.buildIndexes(name, t);
      view.tables.set(name, t);
    }
    return view;
  }

  private makeTable(
    name: string,
    schema: TableSchema,
    keys: readonly string[],
    rows: Record<string, Row>,
    freeze: boolean,
  ): ViewTable {
    const map = new Map<string, Entry>();
    let ord = 0;
    for (const key of keys) {
      const row = rows[key] as Row;
      map.set(key, { key, row: freeze ? deepFreeze(row) : row, ord: ord++ });
    }
    const t: ViewTable = { schema, rows: TableRows.of(map), next: ord, indexes: [] };
    this.buildIndexes(name, t);
    return t;
  }

  private buildIndexes(name: string, t: ViewTable): void {
    t.indexes = [];
    for (const names of this.indexDefs.get(name) ?? []) {
      const fields: IndexField[] = [];
      for (const n of names) {
        const def = t.schema.fields.find((f) => f.name === n);
        if (def === undefined || !INDEXABLE_TYPES.has(def.type)) break;
        fields.push({ name: n, type: def.type });
      }
      if (fields.length !== names.length || fields.length === 0) continue;
      // built on first use by a query, from the rows of that time; kept exact from then on
      t.indexes.push(SortedIndex.lazy(fields, () => t.rows.values()));
    }
  }

  /**
   * Declares the indexes of `table` (each a list of field names; fields missing from the table's
   * schema, or of a type without an order, make that index unused). An index is built when a query
   * first reads it (from the rows of that time) and kept exact under every change from then on;
   * a new table, or a table whose schema changes, gets fresh indexes, built again on first use.
   */
  setIndexes(table: string, defs: IndexDefs): void {
    this.indexDefs.set(table, defs);
    const t = this.tables.get(table);
    if (t !== undefined) this.buildIndexes(table, t);
  }

  /** The declared indexes of `table` (field name lists). */
  indexDefsOf(table: string): IndexDefs {
    return this.indexDefs.get(table) ?? [];
  }

  /** The indexes of `table` (none when it has none or does not exist). */
  indexes(table: string): readonly SortedIndex[] {
    return this.tables.get(table)?.indexes ?? [];
  }

  /**
   * Whether the rows of `table` are keyed yet: a table read from a compact base in table order is
   * keyed on its first lookup by key (scans, counts and index builds read the row arrays).
   * @internal
   */
  isKeyed(table: string): boolean {
    return this.tables.get(table)?.rows.keyed ?? false;
  }

  /** The position of row `key` of `table` in table order (increasing along it), if it exists. */
  ordOf(table: string, key: string): number | undefined {
    return this.tables.get(table)?.rows.get(key)?.ord;
  }

  /** The rows of `table` with their keys and positions, in table order. */
  entryList(table: string): Iterable<Entry> {
    return this.tables.get(table)?.rows.values() ?? [];
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  schemaOf(table: string): TableSchema | undefined {
    return this.tables.get(table)?.schema;
  }

  getRow(table: string, key: string): Row | undefined {
    return this.tables.get(table)?.rows.get(key)?.row;
  }

  *rows(table: string): Iterable<Row> {
    const t = this.tables.get(table);
    if (t === undefined) return;
    for (const e of t.rows.values()) yield e.row;
  }

  /** `[rowKey, row]` pairs of `table`. */
  *entries(table: string): Iterable<[string, Row]> {
    const t = this.tables.get(table);
    if (t === undefined) return;
    for (const e of t.rows.values()) yield [e.key, e.row];
  }

  size(table: string): number {
    return this.tables.get(table)?.rows.size ?? 0;
  }

  /** @internal */
  setRow(table: string, key: string, row: Row | undefined): void {
    const t = this.tables.get(table);
    if (t !== undefined) this.writeRow(table, t, key, row);
  }

  private writeRow(table: string, t: ViewTable, key: string, row: Row | undefined): void {
    const e = t.rows.get(key);
    const old = e?.row;
    if (row === undefined) {
      if (e !== undefined) for (const index of t.indexes) index.remove(e);
      t.rows.delete(key);
    } else if (e !== undefined) {
      // an index whose fields did not change keeps the entry where it is (one not built yet is
      // built from the rows as they are when it is first read)
      const moved = t.indexes.filter((index) => index.built && index.moves(e.row, row));
      for (const index of moved) index.remove(e);
      e.row = row;
      for (const index of moved) index.insert(e);
    } else {
      const added: Entry = { key, row, ord: t.next++ };
      t.rows.set(key, added);
      for (const index of t.indexes) index.insert(added);
    }
    this.collector?.row(table, key, old, row);
  }

  /** @internal */
  setTable(table: string, value: KeyedTable | undefined): void {
    this.collector?.table(table);
    if (value === undefined) {
      this.tables.delete(table);
      return;
    }
    this.tables.set(table, this.makeTable(table, value.schema, Object.keys(value.rows), value.rows, false));
  }

  /**
   * Applies keyed ops in order (strict; they must have been validated, e.g. on an {@link Overlay}).
   * Adds the names of the tables that changed to `changed` as it goes (so that they are known even
   * when a later op throws) and returns it; `rows`, when given, collects the row-level changes.
   */
  apply(ops: readonly PatchOp[], changed: Set<string> = new Set(), rows?: ChangeSet): Set<string> {
    const outer = this.collector;
    if (rows !== undefined) this.collector = rows;
    try {
      for (const op of ops) {
        const table = applyOp(this, op);
        if (table !== undefined) changed.add(table);
      }
    } finally {
      this.collector = outer;
    }
    return changed;
  }

  /**
   * Replays one pending patch tolerantly, with exactly the document module's `rebase` semantics, and
   * returns its conflicts. Cost O(size of the patch) for row edits (rebase runs on a small document
   * holding only the rows the patch names); O(rows of the table) for table and schema edits.
   * Throws `bad_patch` for a malformed op (nothing changed then). `rows`, when given, collects the
   * row-level changes.
   */
  replay(ops: readonly PatchOp[], rows?: ChangeSet): RebaseConflict[] {
    const fullTables = new Set<string>();
    const rowKeys = new Map<string, Set<string>>();
    for (const op of ops) {
      const path = parseKeyedPath(op.path);
      if (path.row === undefined) {
        fullTables.add(path.table);
        continue;
      }
      let keys = rowKeys.get(path.table);
      if (keys === undefined) {
        keys = new Set();
        rowKeys.set(path.table, keys);
      }
      keys.add(path.row);
      // rebase files a written row under its key in the current schema, which may differ
      const schema = this.schemaOf(path.table);
      if (schema !== undefined && path.target === 'row' && op.op !== 'remove') {
        const key = currentKey(schema, path.table, op.value);
        if (key !== undefined) keys.add(key);
      }
    }
    // The rows the patch names (whole tables for table-level ops) are all rebase looks at.
    const tables: Record<string, KeyedTable> = {};
    for (const name of new Set([...fullTables, ...rowKeys.keys()])) {
      const schema = this.schemaOf(name);
      if (schema === undefined) continue;
      let table: KeyedTable;
      if (fullTables.has(name)) {
        table = keyedTableOf(this, name, schema);
      } else {
        const rows: Record<string, Row> = {};
        for (const key of rowKeys.get(name) ?? []) {
          const row = this.getRow(name, key);
          if (row !== undefined) {
            Object.defineProperty(rows, key, {
              value: row,
              writable: true,
              enumerable: true,
              configurable: true,
            });
          }
        }
        table = { schema, rows };
      }
      Object.defineProperty(tables, name, {
        value: table,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    const { patches, conflicts } = rebase({ version: 1, tables }, [ops]);
    // The rewritten patch is strictly valid on those rows, hence on the whole view.
    this.apply(patches[0] ?? [], new Set(), rows);
    return conflicts;
  }

  /**
   * Replaces the whole content by `doc`, keeping the object identity of every row (and table) whose
   * content did not change. Returns the names of the tables that changed; `rows`, when given,
   * collects the row-level changes (a table whose surviving rows came in another order, or whose
   * schema changed, counts as changed as a whole). O(size of the document).
   */
  replaceAll(doc: KeyedDoc, rows?: ChangeSet): Set<string> {
    const changed = new Set<string>();
    const next = new Map<string, ViewTable>();
    for (const name of Object.keys(doc.tables)) {
      const incoming = doc.tables[name] as KeyedTable;
      const old = this.tables.get(name);
      const keys = Object.keys(incoming.rows);
      if (old === undefined || !sameSchema(old.schema, incoming.schema)) {
        next.set(name, this.makeTable(name, incoming.schema, keys, incoming.rows, true));
        changed.add(name);
        rows?.table(name);
        continue;
      }
      let inOrder = true;
      let lastOrd = -1;
      let sawNew = false;
      let survivors = 0;
      const diffs: [string, Row][] = [];
      for (const key of keys) {
        const row = incoming.rows[key] as Row;
        const prev = old.rows.get(key);
        if (prev === undefined) {
          sawNew = true;
          diffs.push([key, row]);
          continue;
        }
        survivors++;
        if (sawNew || prev.ord < lastOrd) inOrder = false;
        lastOrd = prev.ord;
        if (prev.row !== row && !jsonEqual(prev.row, row)) diffs.push([key, row]);
      }
      const removed: string[] = [];
      if (survivors !== old.rows.size) {
        for (const key of old.rows.keys()) if (!Object.hasOwn(incoming.rows, key)) removed.push(key);
      }
      if (diffs.length === 0 && removed.length === 0) {
        next.set(name, old); // same content (in the view's own order)
        continue;
      }
      changed.add(name);
      if (inOrder) {
        const outer = this.collector;
        this.collector = rows;
        try {
          for (const key of removed) this.writeRow(name, old, key, undefined);
          for (const [key, row] of diffs) this.writeRow(name, old, key, deepFreeze(row));
        } finally {
          this.collector = outer;
        }
        next.set(name, old);
        continue;
      }
      const kept: Record<string, Row> = {};
      for (const key of keys) {
        const row = incoming.rows[key] as Row;
        const prev = old.rows.get(key)?.row;
        const value = prev !== undefined && (prev === row || jsonEqual(prev, row)) ? prev : deepFreeze(row);
        Object.defineProperty(kept, key, { value, writable: true, enumerable: true, configurable: true });
      }
      next.set(name, this.makeTable(name, old.schema, keys, kept, false));
      rows?.table(name);
    }
    for (const name of this.tables.keys()) {
      if (!next.has(name)) {
        changed.add(name);
        rows?.table(name);
      }
    }
    this.tables = next;
    return changed;
  }

  /**
   * Replaces the whole content by that of `other` (which must not be used afterwards), as
   * {@link replaceAll} with `other.toKeyed()` does. When this view holds no table (at open), it takes
   * `other`'s tables over without copying them; every table counts as changed as a whole.
   */
  replaceWith(other: View, rows?: ChangeSet): Set<string> {
    if (this.tables.size > 0) return this.replaceAll(other.toKeyed(), rows);
    const changed = new Set<string>();
    for (const [name, t] of other.tables) {
      this.buildIndexes(name, t);
      this.tables.set(name, t);
      changed.add(name);
      rows?.table(name);
    }
    other.tables = new Map();
    return changed;
  }

  /** The keyed form of the whole view (rows shared, not copied). */
  toKeyed(): KeyedDoc {
    return layerToKeyed(this);
  }
}

type Undo =
  | { kind: 'table'; table: string; prev: OverlayTable | null | undefined }
  | { kind: 'row'; table: string; key: string; createdTable: boolean; prev: Row | null | undefined };

interface OverlayTable {
  schema: TableSchema;
  /** true: `rows` is the whole table; false: `rows` holds changes over the base (`null` = deleted). */
  full: boolean;
  rows: Map<string, Row | null>;
}

/**
 * A transaction's pending changes over a {@link View}. Reads see base + changes; the base is never
 * touched. Row changes cost O(1); schema changes copy the table once.
 *
 * @example
 * ```ts
 * const tx = new Overlay(view);
 * tx.apply({ op: 'add', path: '/tables/projects/rows/p_2', value: row });
 * tx.getRow('projects', 'p_2'); // row (the view is unchanged)
 * ```
 */
export class Overlay implements ReadLayer {
  private readonly tables = new Map<string, OverlayTable | null>();
  private readonly journal: Undo[] = [];

  constructor(readonly base: View) {}

  /** A savepoint for {@link rollback}. */
  mark(): number {
    return this.journal.length;
  }

  /** Undoes every change made since `mark` was taken. */
  rollback(mark: number): void {
    while (this.journal.length > mark) {
      const u = this.journal.pop() as Undo;
      if (u.kind === 'table') {
        if (u.prev === undefined) this.tables.delete(u.table);
        else this.tables.set(u.table, u.prev);
        continue;
      }
      if (u.createdTable) {
        this.tables.delete(u.table);
        continue;
      }
      const t = this.tables.get(u.table);
      if (t === undefined || t === null) continue;
      if (u.prev === undefined) t.rows.delete(u.key);
      else t.rows.set(u.key, u.prev);
    }
  }

  /** Applies one keyed op strictly (throws the document module's errors, leaving the overlay unchanged). */
  apply(op: PatchOp): void {
    applyOp(this, op);
  }

  indexes(table: string): readonly SortedIndex[] {
    // a table this transaction changed is read by a scan (its rows are not in the base's indexes)
    return this.tables.get(table) === undefined ? this.base.indexes(table) : [];
  }

  tableNames(): string[] {
    const names = this.base.tableNames().filter((n) => this.tables.get(n) !== null);
    for (const [name, t] of this.tables)
      if (t !== null && this.base.schemaOf(name) === undefined) names.push(name);
    return names;
  }

  schemaOf(table: string): TableSchema | undefined {
    const t = this.tables.get(table);
    if (t === null) return undefined;
    return t === undefined ? this.base.schemaOf(table) : t.schema;
  }

  getRow(table: string, key: string): Row | undefined {
    const t = this.tables.get(table);
    if (t === null) return undefined;
    if (t === undefined) return this.base.getRow(table, key);
    const row = t.rows.get(key);
    if (row !== undefined) return row ?? undefined;
    return t.full ? undefined : this.base.getRow(table, key);
  }

  *entries(table: string): Iterable<[string, Row]> {
    const t = this.tables.get(table);
    if (t === null) return;
    if (t === undefined) {
      yield* this.base.entries(table);
      return;
    }
    if (!t.full) {
      for (const [key, row] of this.base.entries(table)) {
        const change = t.rows.get(key);
        if (change === undefined) yield [key, row];
        else if (change !== null) yield [key, change];
      }
    }
    for (const [key, row] of t.rows) {
      if (row !== null && (t.full || this.base.getRow(table, key) === undefined)) yield [key, row];
    }
  }

  *rows(table: string): Iterable<Row> {
    for (const [, row] of this.entries(table)) yield row;
  }

  size(table: string): number {
    const t = this.tables.get(table);
    if (t === null) return 0;
    if (t === undefined) return this.base.size(table);
    if (t.full) return t.rows.size;
    let n = this.base.size(table);
    for (const [key, row] of t.rows) {
      const inBase = this.base.getRow(table, key) !== undefined;
      if (row === null && inBase) n--;
      else if (row !== null && !inBase) n++;
    }
    return n;
  }

  /** @internal */
  setRow(table: string, key: string, row: Row | undefined): void {
    let t = this.tables.get(table);
    if (t === null) return;
    let createdTable = false;
    if (t === undefined) {
      const schema = this.base.schemaOf(table);
      if (schema === undefined) return;
      t = { schema, full: false, rows: new Map() };
      this.tables.set(table, t);
      createdTable = true;
    }
    if (
      !t.full &&
      row !== undefined &&
      t.rows.get(key) === null &&
      this.base.getRow(table, key) !== undefined
    ) {
      // A base row deleted and added again moves to the end, as in the keyed form: keep the whole
      // table from here on (rare, O(rows) once).
      const full: OverlayTable = { schema: t.schema, full: true, rows: new Map(this.entries(table)) };
      this.journal.push({ kind: 'table', table, prev: t });
      this.tables.set(table, full);
      t = full;
    }
    this.journal.push({ kind: 'row', table, key, createdTable, prev: t.rows.get(key) });
    if (t.full) {
      if (row === undefined) t.rows.delete(key);
      else t.rows.set(key, row);
    } else {
      // a row deleted earlier in this overlay and added again goes to the end, as in the keyed form
      if (row !== undefined && t.rows.get(key) === null) t.rows.delete(key);
      t.rows.set(key, row ?? null);
    }
  }

  /** @internal */
  setTable(table: string, value: KeyedTable | undefined): void {
    this.journal.push({ kind: 'table', table, prev: this.tables.get(table) });
    if (value === undefined) {
      this.tables.set(table, null);
      return;
    }
    this.tables.set(table, { schema: value.schema, full: true, rows: new Map(Object.entries(value.rows)) });
  }

  /** The keyed form of base + changes (rows shared, not copied). */
  toKeyed(): KeyedDoc {
    return layerToKeyed(this);
  }
}

/** The keyed form of a layer. */
export function layerToKeyed(layer: ReadLayer): KeyedDoc {
  const tables: Record<string, KeyedTable> = {};
  for (const name of layer.tableNames()) {
    const schema = layer.schemaOf(name) as TableSchema;
    Object.defineProperty(tables, name, {
      value: keyedTableOf(layer, name, schema),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return { version: 1, tables };
}

/** The keyed form of one table of a layer, or `undefined`. */
export function tableOf(layer: ReadLayer, table: string): KeyedTable | undefined {
  const schema = layer.schemaOf(table);
  return schema === undefined ? undefined : keyedTableOf(layer, table, schema);
}
