import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fenwick } from '../../src/doc/fenwick.js';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TIMEOUT } from './arbitraries.js';

describe('Fenwick', () => {
  it(
    'counts live slots before each slot like a plain array does',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 60 }),
          fc.integer({ min: 0, max: 20 }),
          fc.array(fc.tuple(fc.nat(), fc.boolean())),
          (alive, extra, updates) => {
            const capacity = alive + extra;
            const tree = new Fenwick(capacity, alive);
            const flags = Array.from({ length: capacity }, (_, i) => (i < alive ? 1 : 0));
            for (const [n, on] of updates) {
              if (capacity === 0) break;
              const slot = n % capacity;
              const want = on ? 1 : 0;
              if (flags[slot] !== want) {
                tree.add(slot, want - (flags[slot] as number));
                flags[slot] = want;
              }
            }
            for (let s = 0; s <= capacity; s++) {
              expect(tree.before(s)).toBe(flags.slice(0, s).reduce((a: number, b) => a + (b as number), 0));
            }
          },
        ),
        { numRuns: FUZZ_RUNS, seed: FUZZ_SEED },
      );
    },
    FUZZ_TIMEOUT,
  );
});
