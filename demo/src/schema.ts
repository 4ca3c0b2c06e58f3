/** The demo's two tables (the seed's `projects` and `tasks`). */
import { defineSchema, type RowOf } from 'supabase-userdb';
import { z } from 'zod';

export const schema = defineSchema({
  projects: {
    fields: {
      id: z.string(),
      title: z.string().min(1),
      status: z.string().default('open'),
      created_at: z.iso.datetime({ offset: true }),
    },
    primaryKey: ['id'],
  },
  tasks: {
    fields: {
      id: z.string(),
      project_id: z.string(),
      title: z.string().min(1),
      done: z.boolean().default(false),
    },
    primaryKey: ['id'],
  },
});

export type DemoSchema = typeof schema.definition;
export type Project = RowOf<DemoSchema['projects']['fields']>;
export type Task = RowOf<DemoSchema['tasks']['fields']>;

/** A short random id with a table prefix (`p_…`, `t_…`). */
export function newId(prefix: 'p' | 't'): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
}
