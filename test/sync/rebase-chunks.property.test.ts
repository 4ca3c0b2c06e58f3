import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KeyedDoc, rebase, toKeyed } from '../../src/doc/index.js';
import { rebaseInChunks } from '../../src/sync/rebase.js';
import { docArb, intentArb, materialize, materializePatches, rowIntentArb } from '../unit/arbitraries.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);

const intents = fc.array(fc.oneof(intentArb, rowIntentArb), { minLength: 1, maxLength: 4 });
const scenario = fc.record({
  base: docArb,
  local: fc.array(intents, { minLength: 1, maxLength: 12 }),
  remote: fc.array(fc.oneof(intentArb, rowIntentArb, rowIntentArb), { maxLength: 12 }),
  chunk: fc.integer({ min: 1, max: 5 }),
});

describe('rebaseInChunks', () => {
  it('gives exactly what rebase gives, for any chunk size', () => {
    fc.assert(
      fc.property(scenario, ({ base, local, remote, chunk }) => {
        const k0: KeyedDoc = toKeyed(base);
        const { patches } = materializePatches(k0, local);
        const { doc: newer } = materialize(k0, remote);
        const entries = patches.map((ops, i) => ({ seq: i + 1, ops }));
        const plain = rebase(newer, patches);
        const chunked = rebaseInChunks(newer, entries, chunk);
        expect(chunked.patches).toEqual(plain.patches);
        expect(chunked.conflicts).toEqual(plain.conflicts);
        expect(chunked.doc).toEqual(plain.doc);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  }, 120_000);
});
