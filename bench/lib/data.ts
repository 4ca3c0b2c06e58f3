/**
 * The benchmark data set: one table `items` of rows with 8 fields (~150 bytes of JSON each), made
 * from a fixed seed, so every run and machine measures the same documents.
 */
import { z } from 'zod';
import { type CompactDoc, defineSchema, type InferInsert, type Json } from '../../src/index.js';
import { mulberry32, type Rng, randInt } from './rng.js';

/** The table every workload uses. */
export const TABLE = 'items';

/** The declared schema (typed table `items`). */
export const schema = defineSchema({
  items: {
    fields: {
      id: z.string(),
      title: z.string(),
      status: z.enum(['open', 'review', 'closed']),
      priority: z.int(),
      done: z.boolean(),
      estimate: z.number(),
      tags: z.array(z.string()),
      created_at: z.iso.datetime(),
    },
    primaryKey: ['id'],
  },
});

/** A row of `items`. */
export type Item = InferInsert<typeof schema, 'items'>;

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
const STATUSES = ['open', 'review', 'closed'] as const;
const TAGS = ['ui', 'sync', 'bug', 'docs', 'perf', 'infra'];
const EPOCH = Date.UTC(2026, 0, 1);

/** The key of row `i` (zero-padded, so key order is index order). */
export function keyOf(i: number): string {
  return `it_${String(i).padStart(6, '0')}`;
}

/** Row `i`, with its random parts drawn from `rng`. */
export function makeItem(rng: Rng, i: number): Item {
  const tagCount = randInt(rng, 3);
  const tags: string[] = [];
  for (let t = 0; t < tagCount; t++) tags.push(TAGS[randInt(rng, TAGS.length)] as string);
  return {
    id: keyOf(i),
    title: `Item ${i} ${WORDS[randInt(rng, WORDS.length)]} ${WORDS[randInt(rng, WORDS.length)]}`,
    status: STATUSES[randInt(rng, STATUSES.length)] as Item['status'],
    priority: randInt(rng, 5),
    done: rng() < 0.3,
    estimate: Math.round(rng() * 400) / 10,
    tags,
    created_at: new Date(EPOCH + randInt(rng, 365 * 24 * 3600) * 1000).toISOString(),
  };
}

/** Rows `from` … `from + n - 1` from seed `seed`. */
export function makeItems(n: number, seed: number, from = 0): Item[] {
  const rng = mulberry32(seed);
  const out: Item[] = [];
  for (let i = 0; i < n; i++) out.push(makeItem(rng, from + i));
  return out;
}

/** The compact row of `item` (fields in schema order). */
export function toCompactRow(item: Item): Json[] {
  return [
    item.id,
    item.title,
    item.status,
    item.priority,
    item.done,
    item.estimate,
    item.tags,
    item.created_at,
  ];
}

/** A compact document holding `n` rows of `items` (seeded). */
export function makeDoc(n: number, seed = 1): CompactDoc {
  const rows = makeItems(n, seed).map(toCompactRow);
  const tableSchema = schema.tables.items;
  return {
    version: 1,
    tables: {
      [TABLE]: {
        schema: {
          fields: tableSchema.fields.map((f) => ({ ...f })),
          primaryKey: [...tableSchema.primaryKey],
        },
        rows,
      },
    },
  };
}
