import type { CompactDoc, Json, KeyedTable, PatchOp, TableSchema } from '../../../src/doc/index.js';
import { keyedOp } from '../../../src/doc/index.js';
import { ManualSignal } from '../../../src/sync/env.js';
import { InProcessLocks } from '../../../src/sync/leader.js';

export const projectsSchema: TableSchema = {
  fields: [
    { name: 'id', type: 'string' },
    { name: 'title', type: 'string' },
    { name: 'status', type: 'string' },
  ],
  primaryKey: ['id'],
};

export function docWith(rows: [string, string, string][] = []): CompactDoc {
  return { version: 1, tables: { projects: { schema: projectsSchema, rows: rows.map((r) => [...r]) } } };
}

export function createProjects(): PatchOp[] {
  const table: KeyedTable = { schema: projectsSchema, rows: {} };
  return [keyedOp.addTable('projects', table)];
}

export function insert(id: string, title: string, status = 'open'): PatchOp[] {
  return [keyedOp.addRow('projects', id, { id, title, status })];
}

export function setField(id: string, field: string, old: Json, value: Json): PatchOp[] {
  return [keyedOp.test('projects', id, field, old), keyedOp.setCell('projects', id, field, value)];
}

export function remove(id: string): PatchOp[] {
  return [keyedOp.removeRow('projects', id)];
}

/** Rows of `projects` in a compact doc, sorted by id. */
export function rowsOf(doc: CompactDoc, table = 'projects'): Json[][] {
  return [...(doc.tables[table]?.rows ?? [])].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}

/**
 * Options of a sync engine driven by a test: online and focused, no safety-net poll, no background
 * compaction, pushes right after a write.
 */
export function quietEngineOptions(locks: InProcessLocks = new InProcessLocks()) {
  return {
    online: new ManualSignal(true),
    focus: new ManualSignal(true),
    locks,
    pollIntervalMs: 0,
    pushDebounceMs: 1,
    compactAfterMs: -1,
  };
}
