import type { CompactDoc, KeyedTable, TableSchema } from '../../src/doc/index.js';

/** A small document used by the example-based tests. */
export function sampleDoc(): CompactDoc {
  return {
    version: 1,
    tables: {
      projects: {
        schema: {
          fields: [
            { name: 'id', type: 'string' },
            { name: 'title', type: 'string' },
            { name: 'status', type: 'string' },
            { name: 'created_at', type: 'datetime' },
          ],
          primaryKey: ['id'],
        },
        rows: [
          ['p_1', 'First project', 'open', '2025-10-14T00:00:00Z'],
          ['p_2', 'Second', 'closed', null],
          ['p_3', 'Third', 'open', null],
        ],
      },
      members: {
        schema: {
          fields: [
            { name: 'org', type: 'integer' },
            { name: 'user', type: 'string' },
            { name: 'role', type: 'string' },
          ],
          primaryKey: ['org', 'user'],
        },
        rows: [
          [1, 'ann', 'admin'],
          [1, 'bob', 'member'],
        ],
      },
    },
  };
}

export const tasksSchema: TableSchema = {
  fields: [
    { name: 'id', type: 'integer' },
    { name: 'title', type: 'string' },
    { name: 'done', type: 'boolean' },
  ],
  primaryKey: ['id'],
};

export function tasksTable(): KeyedTable {
  return { schema: tasksSchema, rows: { '1': { id: 1, title: 'a', done: false } } };
}
