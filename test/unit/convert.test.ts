import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompactDoc,
  type CompactTable,
  canonicalCompact,
  parseCompactDoc,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';
import { docArb, FUZZ_RUNS, FUZZ_SEED, FUZZ_TIMEOUT } from './arbitraries.js';
import { sampleDoc } from './fixtures.js';

describe('toKeyed / toCompact / canonicalCompact', () => {
  it(
    'round-trips any valid document (up to row order)',
    () => {
      fc.assert(
        fc.property(docArb, (doc) => {
          const keyed = toKeyed(doc);
          for (const name of Object.keys(keyed.tables)) {
            const t = Object.getOwnPropertyDescriptor(keyed.tables, name)?.value;
            for (const row of Object.values(t.rows)) {
              expect(Object.keys(row as object).sort()).toEqual(
                t.schema.fields.map((f: { name: string }) => f.name).sort(),
              );
            }
          }
          expect(canonicalCompact(toCompact(keyed))).toEqual(canonicalCompact(doc));
          const wire = JSON.stringify(toCompact(keyed));
          expect(JSON.stringify(parseCompactDoc(JSON.parse(wire)))).toBe(wire);
        }),
        { numRuns: FUZZ_RUNS, seed: FUZZ_SEED },
      );
    },
    FUZZ_TIMEOUT,
  );

  it('canonicalCompact sorts rows by key and tables by name, and ignores the input order', () => {
    const doc = sampleDoc();
    const shuffled: CompactDoc = {
      version: 1,
      tables: {
        members: {
          ...(doc.tables.members as CompactTable),
          rows: [...(doc.tables.members?.rows ?? [])].reverse(),
        },
        projects: {
          ...(doc.tables.projects as CompactTable),
          rows: [...(doc.tables.projects?.rows ?? [])].reverse(),
        },
      },
    };
    const canon = canonicalCompact(shuffled);
    expect(Object.keys(canon.tables)).toEqual(['members', 'projects']);
    expect(canon.tables.projects?.rows.map((r) => r[0])).toEqual(['p_1', 'p_2', 'p_3']);
    expect(JSON.stringify(canon)).toBe(JSON.stringify(canonicalCompact(doc)));
  });

  it('fills absent fields with null when going to the compact form', () => {
    const compact = toCompact({
      version: 1,
      tables: {
        t: {
          schema: {
            fields: [
              { name: 'id', type: 'string' },
              { name: 'x', type: 'number' },
            ],
            primaryKey: ['id'],
          },
          rows: { a: { id: 'a' } },
        },
      },
    });
    expect(compact.tables.t?.rows).toEqual([['a', null]]);
  });
});
