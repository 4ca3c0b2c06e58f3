import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyKeyed, type KeyedTable, parseKeyedPath, toKeyed } from '../../src/doc/index.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  intentArb,
  materialize,
  rowIntentArb,
} from './arbitraries.js';

const own = <T>(rec: Record<string, T>, key: string): T | undefined =>
  Object.hasOwn(rec, key) ? rec[key] : undefined;

describe('applyKeyed (property)', () => {
  it(
    'keeps every table and row the patch does not name identical (===) and never mutates its input',
    () => {
      fc.assert(
        fc.property(
          docArb,
          fc.array(fc.oneof(intentArb, rowIntentArb, rowIntentArb), {
            minLength: 1,
            maxLength: 20,
            size: 'medium',
          }),
          (compact, intents) => {
            const base = toKeyed(compact);
            const { ops } = materialize(base, intents);
            const snapshot = JSON.stringify(base);
            const next = applyKeyed(base, ops);
            expect(JSON.stringify(base)).toBe(snapshot);
            const named = new Map<string, Set<string>>();
            const structural = new Set<string>();
            for (const op of ops) {
              const p = parseKeyedPath(op.path);
              if (p.target === 'row' || p.target === 'cell') {
                const keys = named.get(p.table) ?? new Set<string>();
                keys.add(p.row as string);
                named.set(p.table, keys);
              } else structural.add(p.table);
            }
            for (const name of Object.keys(base.tables)) {
              const before = own(base.tables, name) as KeyedTable;
              const after = own(next.tables, name);
              if (!named.has(name) && !structural.has(name)) {
                expect(after).toBe(before);
                continue;
              }
              if (structural.has(name) || after === undefined) continue;
              const keys = named.get(name) as Set<string>;
              for (const key of Object.keys(before.rows)) {
                if (!keys.has(key)) expect(own(after.rows, key)).toBe(own(before.rows, key));
              }
            }
          },
        ),
        { numRuns: FUZZ_RUNS, seed: FUZZ_SEED },
      );
    },
    FUZZ_TIMEOUT,
  );
});
