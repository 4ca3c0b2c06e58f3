/**
 * Validation and encoding of application rows: every value goes through the document's field codec
 * (`encodeValue`: JSON only, `Date` → ISO string for date/datetime fields) and, for declared tables,
 * through the field's zod schema too. Values are copied, so the application's objects are never
 * frozen or shared with the view.
 */
import type { z } from 'zod';
import {
  encodeValue,
  type FieldDef,
  type Json,
  jsonEqual,
  type Row,
  rowKey,
  type TableSchema,
} from '../doc/index.js';
import { ValidationError } from '../errors.js';
import type { DeclaredTable, FieldSpec } from './schema.js';

/** A table as seen by a write: its name, current document schema, and declaration if typed. */
export interface TableContext {
  name: string;
  schema: TableSchema;
  declared: DeclaredTable | undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function zodMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid value';
  const at = issue.path.length > 0 ? ` at ${issue.path.map(String).join('.')}` : '';
  return `${issue.message}${at}`;
}

function copy(value: Json): Json {
  return typeof value === 'object' && value !== null ? (structuredClone(value) as Json) : value;
}

/** Encodes one field value (not `undefined`) or throws {@link ValidationError} naming table, key, field. */
export function encodeField(ctx: TableContext, def: FieldDef, value: unknown, key: string | undefined): Json {
  const where = { table: ctx.name, key, field: def.name };
  const spec: FieldSpec | undefined = ctx.declared?.fields.get(def.name);
  if (value === null) {
    if (spec !== undefined && !spec.nullable) throw new ValidationError('null is not allowed', where);
    if (ctx.schema.primaryKey.includes(def.name))
      throw new ValidationError('primary key value is null', where);
    return null;
  }
  let encoded = encodeValue(def.type, value, where);
  if (spec !== undefined) {
    const parsed = spec.zod.safeParse(encoded);
    if (!parsed.success) throw new ValidationError(`invalid value: ${zodMessage(parsed.error)}`, where);
    if (parsed.data !== encoded) encoded = encodeValue(def.type, parsed.data ?? null, where);
  }
  return copy(encoded);
}

/** The value of a field left out of an inserted row: its zod default, else null (if allowed). */
function absentValue(ctx: TableContext, def: FieldDef, key: string | undefined): Json {
  const spec = ctx.declared?.fields.get(def.name);
  if (spec === undefined) return null;
  const parsed = spec.zod.safeParse(undefined);
  if (!parsed.success) {
    throw new ValidationError('missing required field', { table: ctx.name, key, field: def.name });
  }
  return parsed.data === undefined ? null : encodeField(ctx, def, parsed.data, key);
}

function checkFieldNames(ctx: TableContext, input: Record<string, unknown>, key?: string): void {
  for (const name of Object.keys(input)) {
    if (!ctx.schema.fields.some((f) => f.name === name)) {
      throw new ValidationError('unknown field', { table: ctx.name, key, field: name });
    }
  }
}

/**
 * A complete row (every field of the document schema, in schema order) from an application row,
 * and its row key. Top-level `undefined` means "absent". Throws {@link ValidationError}.
 */
export function encodeRow(ctx: TableContext, input: unknown): { row: Row; key: string } {
  if (!isPlainObject(input)) throw new ValidationError('a row must be a plain object', { table: ctx.name });
  checkFieldNames(ctx, input);
  const row: Row = {};
  const set = (name: string, value: Json): void => {
    Object.defineProperty(row, name, { value, writable: true, enumerable: true, configurable: true });
  };
  const keyFields = new Set(ctx.schema.primaryKey);
  const ordered = ctx.schema.fields.filter((f) => keyFields.has(f.name));
  for (const def of ordered) {
    const value = Object.hasOwn(input, def.name) ? input[def.name] : undefined;
    if (value === undefined) {
      throw new ValidationError('primary key value is missing', { table: ctx.name, field: def.name });
    }
    set(def.name, encodeField(ctx, def, value, undefined));
  }
  const key = rowKey(ctx.schema, row, ctx.name);
  const out: Row = {};
  for (const def of ctx.schema.fields) {
    let value: Json;
    if (keyFields.has(def.name)) {
      value = row[def.name] as Json;
    } else {
      const raw = Object.hasOwn(input, def.name) ? input[def.name] : undefined;
      value = raw === undefined ? absentValue(ctx, def, key) : encodeField(ctx, def, raw, key);
    }
    Object.defineProperty(out, def.name, { value, writable: true, enumerable: true, configurable: true });
  }
  return { row: out, key };
}

/**
 * The field changes of an `update`: `[field, newValue]` for each field whose value really changes.
 * Key fields may be given only with their current value. Throws {@link ValidationError}.
 */
export function encodeChanges(
  ctx: TableContext,
  key: string,
  existing: Row,
  changes: unknown,
): [string, Json][] {
  if (!isPlainObject(changes)) {
    throw new ValidationError('the changes must be a plain object', { table: ctx.name, key });
  }
  checkFieldNames(ctx, changes, key);
  const out: [string, Json][] = [];
  for (const def of ctx.schema.fields) {
    if (!Object.hasOwn(changes, def.name)) continue;
    const raw = changes[def.name];
    if (raw === undefined) continue;
    const value = encodeField(ctx, def, raw, key);
    const current = Object.hasOwn(existing, def.name) ? (existing[def.name] as Json) : null;
    if (jsonEqual(current, value)) continue;
    if (ctx.schema.primaryKey.includes(def.name)) {
      throw new ValidationError(
        'a primary key field cannot be changed (delete the row and insert it again)',
        {
          table: ctx.name,
          key,
          field: def.name,
        },
      );
    }
    out.push([def.name, value]);
  }
  return out;
}

/** Checks the declared fields of an imported row with their zod schemas. */
export function checkDeclaredRow(declared: DeclaredTable, key: string, row: Row): void {
  for (const [name, spec] of declared.fields) {
    const value = Object.hasOwn(row, name) ? (row[name] as Json) : null;
    const where = { table: declared.name, key, field: name };
    if (value === null) {
      if (!spec.nullable) throw new ValidationError('null is not allowed', where);
      continue;
    }
    const parsed = spec.zod.safeParse(value);
    if (!parsed.success) throw new ValidationError(`invalid value: ${zodMessage(parsed.error)}`, where);
  }
}
