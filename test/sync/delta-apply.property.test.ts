/**
 * applyChain against its oracles on random documents and edits: a chain of batches compiled from
 * random keyed patches (what `userdb_patch` logs) gives the document `applyCompact` gives, and its
 * keyed ops replayed on the keyed base give that document's keyed form.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyCompact,
  applyKeyed,
  type CompactDoc,
  canonicalCompact,
  compile,
  toKeyed,
} from '../../src/doc/index.js';
import type { RemoteDelta } from '../../src/remote/index.js';
import { applyChain } from '../../src/sync/delta.js';
import { docArb, FUZZ_RUNS, FUZZ_SEED, FUZZ_TIMEOUT, intentArb, materialize } from '../unit/arbitraries.js';

describe('applyChain (property)', () => {
  it(
    'equals applyCompact on the base, and its keyed ops equal the keyed form of the result',
    () => {
      fc.assert(
        fc.property(
          docArb,
          fc.array(fc.array(intentArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }),
          (base, batches) => {
            const changes: RemoteDelta[] = [];
            let doc: CompactDoc = base;
            for (const [i, intents] of batches.entries()) {
              const { ops } = materialize(toKeyed(doc), intents);
              const compiled = compile(ops, doc);
              changes.push({
                before: `2026-01-01T00:00:0${i}.000000Z`,
                after: `2026-01-01T00:00:0${i + 1}.000000Z`,
                ops: compiled,
                clientId: 'c',
                batchSeq: i + 1,
              });
              doc = applyCompact(doc, compiled);
            }
            const snapshot = JSON.stringify(base);
            const { doc: next, applied } = applyChain(base, changes);
            expect(JSON.stringify(base)).toBe(snapshot);
            expect(canonicalCompact(next)).toEqual(canonicalCompact(doc));
            let keyed = toKeyed(base);
            for (const a of applied) {
              expect(a.keyed).not.toBeNull();
              keyed = applyKeyed(keyed, a.keyed ?? []);
            }
            expect(keyed).toEqual(toKeyed(doc));
          },
        ),
        { numRuns: FUZZ_RUNS, seed: FUZZ_SEED },
      );
    },
    FUZZ_TIMEOUT,
  );
});
