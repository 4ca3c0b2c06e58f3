/**
 * {@link rebase}: replays pending local keyed patches on a newer base (ARCHITECTURE §6), tolerantly.
 *
 * Per op shape (the keyed grammar of `keyed.ts`), when the remote document no longer fits the op:
 * - `add /tables/t`, t exists: the remote rows are kept, realigned to the local schema by field name
 *   (new fields null; values that do not fit their local type become null; rows whose local key would
 *   be null are lost), then the local rows are added over them (local wins). Emitted as
 *   `remove` + `add /tables/t`. Conflict `table_exists` when the schemas differ, `row_exists` for each
 *   remote row a local row overwrote with a different value.
 * - `remove /tables/t`, t gone: dropped silently.
 * - `replace /tables/t/schema`: table gone → dropped (`table_missing`); the remote rows do not fit
 *   the new schema (type, null or duplicate keys) → dropped (`schema_conflict`); otherwise applied
 *   (table-level last writer wins).
 * - `add …/schema/fields/-`: table gone → `table_missing`; field exists with the same type → no-op;
 *   with another type → dropped (`schema_conflict`).
 * - `add …/rows/k`: k exists remotely → becomes `replace` (local wins, `row_exists`, applied).
 * - `replace …/rows/k`: k deleted remotely → dropped (`row_deleted`, the delete wins).
 * - `remove …/rows/k`: already gone → dropped silently.
 * - `replace …/rows/k/f`: row deleted → `row_deleted`; field gone → `field_missing`; the field's type
 *   changed so the value no longer fits → `schema_conflict`; otherwise applied (local wins).
 * - `test …/rows/k/f` (emitted before a cell replace with the value the edit overwrote): when it fails,
 *   the remote changed that field concurrently; the test is rewritten to the remote's value (so the
 *   rewritten patch stays valid and a later rebase compares against what was seen now) and the
 *   following replace of that cell reports `field_changed` (applied, local wins). A test on a missing
 *   row or field is dropped; the replace that follows reports why.
 * Rows written by `add`/`replace` are realigned to the current schema: fields the table no longer has
 * are dropped (`field_missing`), values that no longer fit their type become null (`schema_conflict`).
 * When the remote changed a table's primary key, row keys of older local ops no longer match: those
 * ops behave as on a deleted row. A cell replace of a field that became a key field is dropped
 * (`schema_conflict`).
 * A malformed op (not in the keyed grammar) is not a conflict: it throws `bad_patch`.
 */
import { SchemaError } from '../errors.js';
import { valueIssue } from './fields.js';
import { getOwn, hasOwn, isPlainObject, jsonEqual, setOwn } from './json.js';
import {
  applyParsedOp,
  checkTableValue,
  KeyedDraft,
  type ParsedOp,
  parseKeyedOp,
  realignTable,
} from './keyed.js';
import { rowKey } from './keys.js';
import { keyedPath } from './pointer.js';
import type { Json, KeyedDoc, KeyedTable, PatchOp, Row, TableSchema } from './types.js';
import { parseTableSchema, sameSchema } from './validate.js';

/**
 * What happened to a local edit that did not fit the newer base (see the module docs).
 *
 * @example
 * ```ts
 * const lost = conflicts.filter((c) => c.kind === 'row_deleted');
 * ```
 */
export type RebaseConflictKind =
  | 'row_deleted'
  | 'row_exists'
  | 'table_missing'
  | 'table_exists'
  | 'field_missing'
  | 'field_changed'
  | 'schema_conflict';

/**
 * A local edit that was dropped, or applied as something else, during a {@link rebase}.
 * `local` is the local op's value (row, cell value, schema…), `remote` what the newer base held there.
 *
 * @example
 * ```ts
 * // { kind: 'field_changed', table: 'projects', key: 'p_1', field: 'title',
 * //   local: 'Mine', remote: 'Theirs', resolution: 'applied' }
 * ```
 */
export interface RebaseConflict {
  kind: RebaseConflictKind;
  table: string;
  key?: string;
  field?: string;
  local: Json | undefined;
  remote: Json | undefined;
  resolution: 'dropped' | 'applied';
}

/**
 * The outcome of a {@link rebase}.
 *
 * @example
 * ```ts
 * const { doc, patches, conflicts }: RebaseResult = rebase(newBase, pending);
 * ```
 */
export interface RebaseResult {
  /** The newer base with every surviving local edit applied. */
  doc: KeyedDoc;
  /** One rewritten patch per pending patch (possibly empty), each strictly valid on the doc reached before it. */
  patches: PatchOp[][];
  /** Every local edit dropped or turned into something else, in op order. */
  conflicts: RebaseConflict[];
}

type Emit = (c: RebaseConflict) => void;

function opValue(op: PatchOp): Json | undefined {
  return op.op === 'remove' ? undefined : op.value;
}

function schemaJson(schema: TableSchema): Json {
  return schema as unknown as Json;
}

/**
 * Fits a row written against an older schema to `schema`: unknown fields dropped, values that do not
 * fit their type set to null, missing fields null. Reports each change.
 */
function fitRow(schema: TableSchema, row: Row, table: string, key: string, emit: Emit): Row {
  const names = new Set(schema.fields.map((f) => f.name));
  for (const name of Object.keys(row)) {
    if (!names.has(name)) {
      emit({
        kind: 'field_missing',
        table,
        key,
        field: name,
        local: row[name],
        remote: undefined,
        resolution: 'dropped',
      });
    }
  }
  const out: Row = {};
  for (const f of schema.fields) {
    let v: Json = getOwn(row, f.name) ?? null;
    if (valueIssue(f.type, v) !== undefined) {
      emit({
        kind: 'schema_conflict',
        table,
        key,
        field: f.name,
        local: v,
        remote: null,
        resolution: 'dropped',
      });
      v = null;
    }
    setOwn(out, f.name, v);
  }
  return out;
}

/** The rows of `remote`, realigned to `schema` (tolerant: misfitting values null, keyless rows lost). */
function realignTolerant(name: string, remote: KeyedTable, schema: TableSchema): Record<string, Row> {
  const rows: Record<string, Row> = {};
  for (const k of Object.keys(remote.rows)) {
    const old = remote.rows[k] as Row;
    const row: Row = {};
    for (const f of schema.fields) {
      const v = getOwn(old, f.name) ?? null;
      setOwn(row, f.name, valueIssue(f.type, v) === undefined ? v : null);
    }
    let key: string;
    try {
      key = rowKey(schema, row, name);
    } catch {
      continue;
    }
    if (!hasOwn(rows, key)) setOwn(rows, key, row);
  }
  return rows;
}

function rebaseAddTable(draft: KeyedDraft, p: ParsedOp, emit: Emit): PatchOp[] {
  const name = p.path.table;
  const remote = draft.get(name);
  if (remote === undefined) return [p.op];
  const local = checkTableValue(p);
  if (!sameSchema(local.schema, remote.schema)) {
    emit({
      kind: 'table_exists',
      table: name,
      local: schemaJson(local.schema),
      remote: schemaJson(remote.schema),
      resolution: 'applied',
    });
  }
  const rows = realignTolerant(name, remote, local.schema);
  for (const key of Object.keys(local.rows)) {
    const before = getOwn(rows, key);
    const row = local.rows[key] as Row;
    if (before !== undefined && !jsonEqual(before, row)) {
      emit({ kind: 'row_exists', table: name, key, local: row, remote: before, resolution: 'applied' });
    }
    setOwn(rows, key, row);
  }
  const path = keyedPath.table(name);
  return [
    { op: 'remove', path },
    { op: 'add', path, value: { schema: local.schema, rows } as unknown as Json },
  ];
}

function rebaseOp(draft: KeyedDraft, p: ParsedOp, emit: Emit, changed: Map<string, Json>): PatchOp[] {
  const { op, path } = p;
  const name = path.table;
  if (path.target === 'table') {
    if (op.op === 'add') return rebaseAddTable(draft, p, emit);
    return draft.get(name) === undefined ? [] : [op];
  }
  const table = draft.get(name);
  if (table === undefined) {
    if (op.op !== 'remove' && op.op !== 'test') {
      emit({
        kind: 'table_missing',
        table: name,
        key: path.row,
        field: path.field,
        local: opValue(op),
        remote: undefined,
        resolution: 'dropped',
      });
    }
    return [];
  }
  const { schema } = table;
  switch (path.target) {
    case 'schema': {
      try {
        realignTable(name, table, parseTableSchema(opValue(op), name));
      } catch (e) {
        if (!(e instanceof SchemaError)) throw e;
        emit({
          kind: 'schema_conflict',
          table: name,
          key: e.key,
          field: e.field,
          local: opValue(op),
          remote: schemaJson(schema),
          resolution: 'dropped',
        });
        return [];
      }
      return [op];
    }
    case 'fields': {
      const value = opValue(op);
      const def = isPlainObject(value) ? schema.fields.find((f) => f.name === value.name) : undefined;
      if (def === undefined || !isPlainObject(value)) return [op];
      if (def.type !== value.type) {
        emit({
          kind: 'schema_conflict',
          table: name,
          field: def.name,
          local: value,
          remote: def as unknown as Json,
          resolution: 'dropped',
        });
      }
      return [];
    }
    case 'row': {
      const key = path.row as string;
      if (op.op === 'remove') return hasOwn(table.rows, key) ? [op] : [];
      const local = opValue(op);
      if (!isPlainObject(local)) return [op]; // let the strict apply report it
      const row = fitRow(schema, local as Row, name, key, emit);
      let newKey: string;
      try {
        newKey = rowKey(schema, row, name);
      } catch (e) {
        emit({
          kind: 'schema_conflict',
          table: name,
          key,
          field: (e as SchemaError).field,
          local,
          remote: undefined,
          resolution: 'dropped',
        });
        return [];
      }
      const remote = getOwn(table.rows, newKey);
      const rowPath = keyedPath.row(name, newKey);
      if (op.op === 'add') {
        if (remote === undefined) return [{ op: 'add', path: rowPath, value: row }];
        emit({ kind: 'row_exists', table: name, key: newKey, local, remote, resolution: 'applied' });
        return [{ op: 'replace', path: rowPath, value: row }];
      }
      if (remote === undefined) {
        emit({ kind: 'row_deleted', table: name, key, local, remote: undefined, resolution: 'dropped' });
        return [];
      }
      return [{ op: 'replace', path: rowPath, value: row }];
    }
    case 'cell': {
      const key = path.row as string;
      const field = path.field as string;
      const value = opValue(op) as Json;
      const remoteRow = getOwn(table.rows, key);
      const def = schema.fields.find((f) => f.name === field);
      if (op.op === 'test') {
        if (remoteRow === undefined || def === undefined) return [];
        const current = getOwn(remoteRow, field) ?? null;
        if (jsonEqual(current, value)) return [op];
        changed.set(op.path, current);
        return [{ op: 'test', path: op.path, value: current }];
      }
      const seen = changed.get(op.path);
      changed.delete(op.path);
      const loc = { table: name, key, field, local: value };
      if (remoteRow === undefined) {
        emit({ kind: 'row_deleted', ...loc, remote: undefined, resolution: 'dropped' });
        return [];
      }
      if (def === undefined) {
        emit({ kind: 'field_missing', ...loc, remote: undefined, resolution: 'dropped' });
        return [];
      }
      const current = getOwn(remoteRow, field) ?? null;
      const keyChange = schema.primaryKey.includes(field) && !jsonEqual(current, value);
      if (keyChange || valueIssue(def.type, value) !== undefined) {
        emit({ kind: 'schema_conflict', ...loc, remote: current, resolution: 'dropped' });
        return [];
      }
      if (seen !== undefined) emit({ kind: 'field_changed', ...loc, remote: seen, resolution: 'applied' });
      return [op];
    }
  }
  return [op];
}

/**
 * Replays pending keyed patches (oldest first) on a newer base, tolerantly (see the module docs for
 * the rule of each op shape). Returns the resulting document, the patches rewritten so that each is
 * strictly valid (`applyKeyed`) on the document reached before it, and every local edit that was
 * dropped or turned into something else. The inputs are never mutated; tables and rows no op
 * touches keep their identity. Runs in time linear in the ops plus the rows of the tables they write
 * (each touched table's rows are copied once for the whole replay, not once per patch).
 *
 * @example
 * ```ts
 * const { doc, patches, conflicts } = rebase(toKeyed(serverDoc), outbox.map((e) => e.patch));
 * for (const c of conflicts) console.warn(c.kind, c.table, c.key, c.field);
 * ```
 */
export function rebase(base: KeyedDoc, pending: readonly (readonly PatchOp[])[]): RebaseResult {
  // One draft for the whole replay: each table's rows are copied at most once, not once per patch,
  // so the cost is linear in ops + touched rows. The draft after patch i is the doc reached before i + 1.
  const draft = new KeyedDraft(base);
  const patches: PatchOp[][] = [];
  const conflicts: RebaseConflict[] = [];
  const emit: Emit = (c) => {
    const clean = { ...c };
    if (clean.key === undefined) delete clean.key;
    if (clean.field === undefined) delete clean.field;
    conflicts.push(clean);
  };
  for (const patch of pending) {
    const out: PatchOp[] = [];
    const changed = new Map<string, Json>();
    patch.forEach((op, index) => {
      for (const rewritten of rebaseOp(draft, parseKeyedOp(op, index), emit, changed)) {
        applyParsedOp(draft, parseKeyedOp(rewritten, index));
        out.push(rewritten);
      }
    });
    patches.push(out);
  }
  return { doc: draft.result(), patches, conflicts };
}
