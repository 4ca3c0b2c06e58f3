/**
 * The keyed patch semantics: {@link applyKeyed} and the per-op checks shared with the compiler.
 *
 * Keyed op grammar (the only shapes accepted):
 * 1. `add     /tables/{t}`                   value: KeyedTable   create a table (rows may be non-empty)
 * 2. `remove  /tables/{t}`                                       drop a table
 * 3. `replace /tables/{t}/schema`            value: TableSchema  change the schema; rows realigned by field name
 * 4. `add     /tables/{t}/schema/fields/-`   value: FieldDef     add a field (existing rows get null)
 * 5. `add     /tables/{t}/rows/{k}`          value: Row          insert a row (k must be new)
 * 6. `replace /tables/{t}/rows/{k}`          value: Row          replace an existing row
 * 7. `remove  /tables/{t}/rows/{k}`                              delete a row
 * 8. `replace /tables/{t}/rows/{k}/{f}`      value: Json         update one field (not a key field)
 *    `test    /tables/{t}/rows/{k}/{f}`      value: Json         the cell holds `value`
 *
 * Rows in values may omit fields (they become null); unknown fields, wrong types and null key
 * fields are rejected, and a row's key must equal the `{k}` of its path.
 */
import { SchemaError, UserDbError, ValidationError } from '../errors.js';
import { isFieldType, valueIssue } from './fields.js';
import { getOwn, hasOwn, isPlainObject, jsonEqual, reasonOf, setOwn } from './json.js';
import { rowKey } from './keys.js';
import { type KeyedPathInfo, parseKeyedPath } from './pointer.js';
import { schemaInfo } from './schema-info.js';
import type { FieldDef, Json, KeyedDoc, KeyedTable, PatchOp, Row, TableSchema } from './types.js';
import { normalizeRow, parseTableSchema, sameSchema } from './validate.js';

/** A patch op with its parsed keyed path. */
export interface ParsedOp {
  op: PatchOp;
  index: number;
  path: KeyedPathInfo;
}

/** A `bad_patch` error naming the op index and where it points. */
export function badPatch(
  index: number,
  op: PatchOp,
  message: string,
  loc: {
    table?: string | undefined;
    key?: string | undefined;
    field?: string | undefined;
    cause?: unknown;
  } = {},
): UserDbError {
  return new UserDbError('bad_patch', `op ${index} (${describeOp(op)}): ${message}`, loc);
}

function describeOp(op: PatchOp): string {
  const o = op as { op?: unknown; path?: unknown };
  return `${String(o.op)} ${typeof o.path === 'string' ? o.path : String(o.path)}`;
}

/** Parses and shape-checks op `index` against the keyed grammar (not yet against a document). */
export function parseKeyedOp(op: PatchOp, index: number): ParsedOp {
  if (!isPlainObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
    throw badPatch(index, op, 'not a JSON Patch operation');
  }
  let path: KeyedPathInfo;
  try {
    path = parseKeyedPath(op.path);
  } catch (e) {
    throw badPatch(index, op, 'not a keyed userdb path', { cause: e });
  }
  const allowed: Record<string, KeyedPathInfo['target'][]> = {
    add: ['table', 'fields', 'row'],
    remove: ['table', 'row'],
    replace: ['schema', 'row', 'cell'],
    test: ['cell'],
  };
  if (!(allowed[op.op] ?? []).includes(path.target)) {
    throw badPatch(index, op, `"${op.op}" is not supported on a ${path.target} path`, { table: path.table });
  }
  if (op.op !== 'remove' && !hasOwn(op, 'value'))
    throw badPatch(index, op, 'missing "value"', { table: path.table });
  return { op, index, path };
}

/** A copy-on-write view of a keyed document: each table and rows object is copied at most once. */
export class KeyedDraft {
  private tables: Record<string, KeyedTable> | undefined;
  private readonly owned = new Set<string>();

  constructor(readonly base: KeyedDoc) {}

  /** The current table `name`, if any. */
  get(name: string): KeyedTable | undefined {
    return getOwn(this.tables ?? this.base.tables, name);
  }

  /** Table `name` (which must exist) with its `rows` object safe to mutate. */
  writable(name: string): KeyedTable {
    const t = this.get(name) as KeyedTable;
    if (this.owned.has(name)) return t;
    const copy: KeyedTable = { schema: t.schema, rows: { ...t.rows } };
    this.put(name, copy);
    return copy;
  }

  /**
   * Sets table `name`. `ownsRows` says whether `table.rows` is a fresh object this draft may
   * mutate (false when it is shared with another document).
   */
  put(name: string, table: KeyedTable, ownsRows = true): void {
    this.tables ??= { ...this.base.tables };
    setOwn(this.tables, name, table);
    if (ownsRows) this.owned.add(name);
    else this.owned.delete(name);
  }

  /** Drops table `name`. */
  delete(name: string): void {
    this.tables ??= { ...this.base.tables };
    delete this.tables[name];
    this.owned.delete(name);
  }

  /** The resulting document (the base itself when nothing changed). */
  result(): KeyedDoc {
    return this.tables === undefined ? this.base : { version: 1, tables: this.tables };
  }
}

/** Checks a row value for a row op and returns it normalized (throws `bad_patch`). */
export function checkRowValue(p: ParsedOp, schema: TableSchema): Row {
  const { table, row: key } = p.path;
  const value = (p.op as { value: Json }).value;
  let row: Row;
  try {
    row = normalizeRow(schema, value, { table, key });
  } catch (e) {
    if (e instanceof ValidationError)
      throw badPatch(p.index, p.op, reasonOf(e), { table, key, field: e.field, cause: e });
    throw e;
  }
  const actual = rowKey(schema, row, table);
  if (actual !== key) {
    throw badPatch(p.index, p.op, `the row's key ${JSON.stringify(actual)} differs from the path's`, {
      table,
      key,
    });
  }
  return row;
}

/** Checks a cell value against its field (throws `bad_patch`); returns the field definition. */
export function checkCellValue(p: ParsedOp, schema: TableSchema): FieldDef {
  const { table, row: key, field } = p.path;
  const def = schemaInfo(schema).byName.get(field as string);
  if (def === undefined) throw badPatch(p.index, p.op, 'no such field', { table, key, field });
  if (p.op.op === 'test') return def;
  const value = (p.op as { value: Json }).value;
  const issue = valueIssue(def.type, value);
  if (issue !== undefined)
    throw badPatch(p.index, p.op, `invalid ${def.type} value: ${issue}`, { table, key, field });
  if (value === null && schema.primaryKey.includes(def.name)) {
    throw badPatch(p.index, p.op, 'primary key value is null', { table, key, field });
  }
  return def;
}

/**
 * Checks a cell op (`replace` or `test`) against the row it addresses. Returns true when it changes
 * the row, false when it does not (a passing test, or the same value); throws `bad_patch` otherwise.
 */
export function checkCellOp(p: ParsedOp, schema: TableSchema, row: Row): boolean {
  const { table, row: key, field } = p.path;
  checkCellValue(p, schema);
  const current = getOwn(row, field as string) ?? null;
  if (jsonEqual(current, (p.op as { value: Json }).value)) return false;
  if (p.op.op === 'test') {
    throw badPatch(p.index, p.op, `test failed: the value is ${JSON.stringify(current)}`, {
      table,
      key,
      field,
    });
  }
  if (schema.primaryKey.includes(field as string)) {
    throw badPatch(p.index, p.op, 'a primary key field cannot be replaced (remove and add the row)', {
      table,
      key,
      field,
    });
  }
  return true;
}

/** Checks a new table value for `add /tables/{t}` and returns a clean copy. */
export function checkTableValue(p: ParsedOp): KeyedTable {
  const { table } = p.path;
  const value = (p.op as { value: Json }).value;
  if (!isPlainObject(value) || !isPlainObject(value.rows)) {
    throw badPatch(p.index, p.op, 'a table value needs "schema" and "rows" objects', { table });
  }
  let schema: TableSchema;
  try {
    schema = parseTableSchema(value.schema, table);
  } catch (e) {
    if (e instanceof SchemaError)
      throw badPatch(p.index, p.op, reasonOf(e), { table, field: e.field, cause: e });
    throw e;
  }
  const rows: Record<string, Row> = {};
  const rowsIn = value.rows as Record<string, Json>;
  for (const key of Object.keys(rowsIn)) {
    const rowOp = { op: 'add', path: '', value: rowsIn[key] } as PatchOp;
    setOwn(
      rows,
      key,
      checkRowValue({ op: rowOp, index: p.index, path: { target: 'row', table, row: key } }, schema),
    );
  }
  return { schema, rows };
}

/** Checks a field definition for `add /tables/{t}/schema/fields/-`. */
export function checkFieldValue(p: ParsedOp, schema: TableSchema): FieldDef {
  const { table } = p.path;
  const value = (p.op as { value: Json }).value;
  if (
    !isPlainObject(value) ||
    typeof value.name !== 'string' ||
    value.name === '' ||
    !isFieldType(value.type)
  ) {
    throw badPatch(p.index, p.op, 'a field needs a non-empty "name" and a known "type"', { table });
  }
  if (schema.fields.some((f) => f.name === value.name)) {
    throw badPatch(p.index, p.op, 'field already exists', { table, field: value.name });
  }
  return { name: value.name, type: value.type };
}

/**
 * Realigns `table` to `schema` by field name: new fields null, removed fields dropped, keys recomputed
 * when the primary key changes. Unchanged rows (and the rows object, when possible) keep their identity.
 * Throws {@link SchemaError} when a value does not fit its new type, or keys become null or duplicated.
 *
 * @example
 * ```ts
 * const widened = realignTable('tasks', doc.tables.tasks, { fields: [...schema.fields, { name: 'tags', type: 'array' }], primaryKey: ['id'] });
 * ```
 */
export function realignTable(name: string, table: KeyedTable, schema: TableSchema): KeyedTable {
  if (sameSchema(table.schema, schema)) return table;
  const oldTypes = new Map(table.schema.fields.map((f) => [f.name, f.type]));
  const sameFields =
    oldTypes.size === schema.fields.length && schema.fields.every((f) => oldTypes.has(f.name));
  const samePk =
    table.schema.primaryKey.length === schema.primaryKey.length &&
    table.schema.primaryKey.every((n, i) => n === schema.primaryKey[i]);
  const retyped = schema.fields.filter((f) => oldTypes.has(f.name) && oldTypes.get(f.name) !== f.type);
  for (const key of Object.keys(table.rows)) {
    const row = table.rows[key] as Row;
    for (const f of retyped) {
      const issue = valueIssue(f.type, getOwn(row, f.name) ?? null);
      if (issue !== undefined) {
        throw new SchemaError(`cannot change the field's type to ${f.type}: ${issue}`, {
          table: name,
          key,
          field: f.name,
        });
      }
    }
  }
  if (sameFields && samePk) return { schema, rows: table.rows };
  const rows: Record<string, Row> = {};
  for (const key of Object.keys(table.rows)) {
    const old = table.rows[key] as Row;
    let row: Row = old;
    if (!sameFields) {
      row = {};
      for (const f of schema.fields) setOwn(row, f.name, getOwn(old, f.name) ?? null);
    }
    let newKey = key;
    if (!samePk) {
      try {
        newKey = rowKey(schema, row, name);
      } catch (e) {
        throw new SchemaError(`the new primary key is invalid for an existing row: ${reasonOf(e as Error)}`, {
          table: name,
          key,
          cause: e,
        });
      }
      if (hasOwn(rows, newKey)) {
        throw new SchemaError('the new primary key is not unique', { table: name, key: newKey });
      }
    }
    setOwn(rows, newKey, row);
  }
  return { schema, rows };
}

/** Applies one parsed keyed op to `draft` (strict: throws `bad_patch`, or `SchemaError` for a schema change). */
export function applyParsedOp(draft: KeyedDraft, p: ParsedOp): void {
  const { op, index, path } = p;
  const { table: name } = path;
  const table = draft.get(name);
  if (path.target === 'table' && op.op === 'add') {
    if (table !== undefined) throw badPatch(index, op, 'table already exists', { table: name });
    draft.put(name, checkTableValue(p));
    return;
  }
  if (table === undefined) throw badPatch(index, op, 'no such table', { table: name });
  switch (path.target) {
    case 'table':
      draft.delete(name);
      return;
    case 'schema': {
      let schema: TableSchema;
      try {
        schema = parseTableSchema((op as { value: Json }).value, name);
      } catch (e) {
        if (e instanceof SchemaError)
          throw badPatch(index, op, reasonOf(e), { table: name, field: e.field, cause: e });
        throw e;
      }
      let next: KeyedTable;
      try {
        next = realignTable(name, table, schema);
      } catch (e) {
        if (e instanceof SchemaError) {
          throw new SchemaError(`op ${index} (${op.op} ${op.path}): ${reasonOf(e)}`, {
            table: name,
            key: e.key,
            field: e.field,
            cause: e,
          });
        }
        throw e;
      }
      if (next !== table) draft.put(name, next, next.rows !== table.rows);
      return;
    }
    case 'fields': {
      const def = checkFieldValue(p, table.schema);
      const rows: Record<string, Row> = {};
      for (const key of Object.keys(table.rows)) setOwn(rows, key, { ...table.rows[key], [def.name]: null });
      draft.put(name, {
        schema: { fields: [...table.schema.fields, def], primaryKey: table.schema.primaryKey },
        rows,
      });
      return;
    }
    case 'row': {
      const key = path.row as string;
      const exists = hasOwn(table.rows, key);
      if (op.op === 'add' && exists) throw badPatch(index, op, 'row already exists', { table: name, key });
      if (op.op !== 'add' && !exists) throw badPatch(index, op, 'no such row', { table: name, key });
      if (op.op === 'remove') {
        delete draft.writable(name).rows[key];
        return;
      }
      const row = checkRowValue(p, table.schema);
      if (exists && jsonEqual(table.rows[key], row)) return;
      setOwn(draft.writable(name).rows, key, row);
      return;
    }
    case 'cell': {
      const key = path.row as string;
      const field = path.field as string;
      const old = getOwn(table.rows, key);
      if (old === undefined) throw badPatch(index, op, 'no such row', { table: name, key, field });
      if (!checkCellOp(p, table.schema, old)) return;
      setOwn(draft.writable(name).rows, key, { ...old, [field]: (op as { value: Json }).value });
      return;
    }
  }
}

/**
 * Applies a keyed patch to a keyed document, strictly: any op that is not valid for the document
 * reached so far throws `UserDbError` code `bad_patch` naming the op index and its table/key/field
 * (a schema change that breaks the data throws {@link SchemaError}). The input is never mutated;
 * untouched tables and rows keep their object identity.
 *
 * @example
 * ```ts
 * const next = applyKeyed(doc, [
 *   { op: 'add', path: keyedPath.row('projects', 'p_2'), value: { id: 'p_2', title: 'Second' } },
 *   { op: 'replace', path: keyedPath.cell('projects', 'p_1', 'title'), value: 'Renamed' },
 * ]);
 * ```
 */
export function applyKeyed(doc: KeyedDoc, ops: readonly PatchOp[]): KeyedDoc {
  const draft = new KeyedDraft(doc);
  ops.forEach((op, index) => {
    applyParsedOp(draft, parseKeyedOp(op, index));
  });
  return draft.result();
}
