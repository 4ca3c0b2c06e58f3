/**
 * Typed builders for the ops of the keyed grammar (see `keyed.ts`), so callers need no casts
 * to put a schema or a table into a {@link PatchOp}.
 */
import { keyedPath } from './pointer.js';
import type { FieldDef, Json, KeyedTable, PatchOp, Row, TableSchema } from './types.js';

/**
 * One builder per op shape of the keyed grammar.
 *
 * @example
 * ```ts
 * const patch = [
 *   keyedOp.addTable('tasks', { schema, rows: {} }),
 *   keyedOp.addRow('tasks', '1', { id: 1, title: 'Write docs' }),
 *   keyedOp.test('tasks', '1', 'title', 'Write docs'),
 *   keyedOp.setCell('tasks', '1', 'title', 'Write the docs'),
 * ];
 * ```
 */
export const keyedOp = {
  addTable: (t: string, table: KeyedTable): PatchOp => ({
    op: 'add',
    path: keyedPath.table(t),
    value: table as unknown as Json,
  }),
  removeTable: (t: string): PatchOp => ({ op: 'remove', path: keyedPath.table(t) }),
  replaceSchema: (t: string, schema: TableSchema): PatchOp => ({
    op: 'replace',
    path: keyedPath.schema(t),
    value: schema as unknown as Json,
  }),
  addField: (t: string, field: FieldDef): PatchOp => ({
    op: 'add',
    path: keyedPath.fields(t),
    value: field as unknown as Json,
  }),
  addRow: (t: string, k: string, row: Row): PatchOp => ({ op: 'add', path: keyedPath.row(t, k), value: row }),
  replaceRow: (t: string, k: string, row: Row): PatchOp => ({
    op: 'replace',
    path: keyedPath.row(t, k),
    value: row,
  }),
  removeRow: (t: string, k: string): PatchOp => ({ op: 'remove', path: keyedPath.row(t, k) }),
  setCell: (t: string, k: string, f: string, value: Json): PatchOp => ({
    op: 'replace',
    path: keyedPath.cell(t, k, f),
    value,
  }),
  test: (t: string, k: string, f: string, value: Json): PatchOp => ({
    op: 'test',
    path: keyedPath.cell(t, k, f),
    value,
  }),
} as const;
