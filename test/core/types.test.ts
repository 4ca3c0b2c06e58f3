/**
 * Type tests: checked by `tsc` (npm run typecheck). Each `@ts-expect-error` line must be a compile
 * error, so a type that became too loose fails the typecheck. The functions are never called.
 */
import type { Observable } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type CompactDoc,
  defineSchema,
  type IndexDefinition,
  type Json,
  type Query,
  type QueryExplain,
  type RowOf,
  type Table,
  type UntypedRow,
  type UserDb,
} from '../../src/index.js';

const schema = defineSchema({
  projects: {
    fields: {
      id: z.string(),
      title: z.string(),
      status: z.enum(['open', 'closed']),
      created_at: z.iso.datetime(),
      note: z.string().nullable().optional(),
      rank: z.number().int().default(0),
    },
    primaryKey: ['id'],
  },
  members: {
    fields: { team: z.string(), user: z.int(), role: z.string() },
    primaryKey: ['team', 'user'],
  },
});

type Db = UserDb<typeof schema.definition>;
type Project = RowOf<(typeof schema.definition)['projects']['fields']>;

function typedUsage(db: Db): void {
  const projects = db.table('projects');
  expectTypeOf(projects.get('p1')).toEqualTypeOf<
    Promise<
      | {
          readonly id: string;
          readonly title: string;
          readonly status: 'open' | 'closed';
          readonly created_at: string;
          readonly note: string | null;
          readonly rank: number;
        }
      | undefined
    >
  >();
  expectTypeOf<Project['note']>().toEqualTypeOf<string | null>();
  expectTypeOf(projects.query()).toEqualTypeOf<Query<Project>>();
  expectTypeOf(projects.query().observe()).toEqualTypeOf<Observable<Project[]>>();
  expectTypeOf(projects.observe('p1')).toEqualTypeOf<Observable<Project | undefined>>();
  expectTypeOf(db.export()).toEqualTypeOf<Promise<CompactDoc>>();
  expectTypeOf(projects.query().observeCount()).toEqualTypeOf<Observable<number>>();
  expectTypeOf(projects.query().explain()).toEqualTypeOf<Promise<QueryExplain>>();

  // optional and defaulted fields may be left out of an insert
  void projects.insert({ id: 'p', title: 't', status: 'open', created_at: '2025-01-01T00:00:00Z' });
  void projects.insert({ id: 'p', title: 't', status: 'open', created_at: 'x', note: null, rank: 2 });
  void projects.update('p', { title: 'x', note: null });
  void projects
    .query()
    .where('status', '==', 'open')
    .where('rank', 'in', [1, 2])
    .orderBy('created_at', 'desc');

  // composite keys are typed tuples
  void db.table('members').get(['team', 1]);
  // @ts-expect-error a composite key needs both values
  void db.table('members').get('team');
  // @ts-expect-error key values have the key fields' types
  void db.table('members').get([1, 'team']);

  // @ts-expect-error unknown table name
  db.table('project');
  // @ts-expect-error unknown field name in an insert
  void projects.insert({ id: 'p', title: 't', status: 'open', created_at: 'x', colour: 'red' });
  // @ts-expect-error a required field is missing
  void projects.insert({ id: 'p', title: 't', status: 'open' });
  // @ts-expect-error wrong field type
  void projects.insert({ id: 'p', title: 1, status: 'open', created_at: 'x' });
  // @ts-expect-error value outside the enum
  void projects.update('p', { status: 'archived' });
  // @ts-expect-error the primary key is not part of the changes
  void projects.update('p', { id: 'q' });
  // @ts-expect-error a non-nullable field cannot be set to null
  void projects.update('p', { title: null });
  // @ts-expect-error wrong key type
  void projects.get(1);
  // @ts-expect-error unknown field in a query
  void projects.query().where('colour', '==', 'red');
  // @ts-expect-error value of the wrong type in a query
  void projects.query().where('rank', '>', 'high');
  // @ts-expect-error unknown field in orderBy
  void projects.query().orderBy('colour');
  // @ts-expect-error unknown operator
  void projects.query().where('rank', '=>', 1);
  void projects.get('p').then((p) => {
    if (p === undefined) return;
    // @ts-expect-error rows are read-only
    p.title = 'x';
  });
}

function indexDeclarations(): void {
  const fields = { id: z.string(), status: z.string(), at: z.iso.datetime() };
  defineSchema({ t: { fields, primaryKey: ['id'], indexes: ['status', ['status', 'at']] } });
  expectTypeOf<IndexDefinition<typeof fields>>().toEqualTypeOf<
    'id' | 'status' | 'at' | readonly ('id' | 'status' | 'at')[]
  >();
  // @ts-expect-error an index on an unknown field
  defineSchema({ t: { fields, primaryKey: ['id'], indexes: ['colour'] } });
  // @ts-expect-error a compound index with an unknown field
  defineSchema({ t: { fields, primaryKey: ['id'], indexes: [['status', 'colour']] } });
  // @ts-expect-error indexes are field names, not numbers
  defineSchema({ t: { fields, primaryKey: ['id'], indexes: [1] } });
}

function untypedUsage(db: UserDb): void {
  const notes = db.table('anything');
  expectTypeOf(notes).toEqualTypeOf<Table<import('../../src/index.js').UntypedTableTypes>>();
  expectTypeOf(notes.get('k')).toEqualTypeOf<Promise<UntypedRow | undefined>>();
  void notes.insert({ id: 'n', data: { nested: [1, 'two', null] } });
  void notes.get(['composite', 1]);
  const value: Json = { a: 1 };
  void notes.update('n', { value });
  // @ts-expect-error values must be JSON
  void notes.insert({ id: 'n', fn: () => 1 });
}

describe('types', () => {
  it('are checked at compile time', () => {
    expect(typeof typedUsage).toBe('function');
    expect(typeof untypedUsage).toBe('function');
    expect(typeof indexDeclarations).toBe('function');
  });
});
