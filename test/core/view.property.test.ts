/**
 * The Map-based view and the transaction overlay must apply keyed ops exactly as the document
 * module's `applyKeyed` does: same result, same strictness (an op throws on the view iff it throws
 * on the keyed document), for random documents and random edit sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyKeyed,
  type KeyedDoc,
  type PatchOp,
  parseKeyedPath,
  rebase,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';
import { layerToKeyed, Overlay, View } from '../../src/query/index.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  intentArb,
  materialize,
  materializePatches,
  rowIntentArb,
} from '../unit/arbitraries.js';

const params = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };

/** Applies ops one by one to a keyed doc, skipping those that throw; returns which ones threw. */
function reference(doc: KeyedDoc, ops: readonly PatchOp[]): { doc: KeyedDoc; threw: boolean[] } {
  let current = doc;
  const threw = ops.map((op) => {
    try {
      current = applyKeyed(current, [op]);
      return false;
    } catch {
      return true;
    }
  });
  return { doc: current, threw };
}

function applyEach(layer: View | Overlay, ops: readonly PatchOp[]): boolean[] {
  return ops.map((op) => {
    try {
      if (layer instanceof View) layer.apply([op]);
      else layer.apply(op);
      return false;
    } catch {
      return true;
    }
  });
}

describe('View and Overlay apply keyed ops like applyKeyed', () => {
  it('valid edit sequences give the same document', () => {
    fc.assert(
      fc.property(docArb, fc.array(intentArb, { maxLength: 25 }), (doc, intents) => {
        const keyed = toKeyed(doc);
        const { ops, doc: expected } = materialize(keyed, intents);
        const view = View.fromKeyed(toKeyed(doc));
        const overlay = new Overlay(View.fromKeyed(toKeyed(doc)));
        expect(applyEach(view, ops).some(Boolean)).toBe(false);
        expect(applyEach(overlay, ops).some(Boolean)).toBe(false);
        expect(toCompact(view.toKeyed())).toEqual(toCompact(expected));
        expect(toCompact(layerToKeyed(overlay))).toEqual(toCompact(expected));
        // the overlay never touched its base, and a rollback restores it
        expect(toCompact(overlay.base.toKeyed())).toEqual(toCompact(keyed));
        overlay.rollback(0);
        expect(toCompact(layerToKeyed(overlay))).toEqual(toCompact(keyed));
      }),
      params,
    );
  });

  it('ops replayed out of context throw exactly where applyKeyed throws', () => {
    fc.assert(
      fc.property(docArb, fc.array(intentArb, { maxLength: 20 }), fc.nat(), (doc, intents, cut) => {
        const { ops } = materialize(toKeyed(doc), intents);
        // replay the sequence with a prefix missing: later ops may no longer fit
        const shuffled = ops.slice(ops.length === 0 ? 0 : cut % ops.length);
        const ref = reference(toKeyed(doc), shuffled);
        const view = View.fromKeyed(toKeyed(doc));
        const overlay = new Overlay(View.fromKeyed(toKeyed(doc)));
        expect(applyEach(view, shuffled)).toEqual(ref.threw);
        expect(applyEach(overlay, shuffled)).toEqual(ref.threw);
        expect(toCompact(view.toKeyed())).toEqual(toCompact(ref.doc));
        expect(toCompact(layerToKeyed(overlay))).toEqual(toCompact(ref.doc));
      }),
      params,
    );
  });

  it('unchanged rows keep their identity, and replaceAll keeps identity of equal rows', () => {
    fc.assert(
      fc.property(docArb, fc.array(intentArb, { maxLength: 15 }), (doc, intents) => {
        const view = View.fromKeyed(toKeyed(doc));
        const before = new Map(view.tableNames().map((t) => [t, new Map(view.entries(t))]));
        const { ops, doc: expected } = materialize(toKeyed(doc), intents);
        view.apply(ops);
        // rows no op addressed keep their object, unless their table's schema changed
        const touchedRows = new Set<string>();
        const touchedTables = new Set<string>();
        for (const o of ops) {
          const p = parseKeyedPath(o.path);
          if (p.row === undefined) touchedTables.add(p.table);
          else touchedRows.add(JSON.stringify([p.table, p.row]));
        }
        for (const t of view.tableNames()) {
          const old = before.get(t);
          if (old === undefined || touchedTables.has(t)) continue;
          for (const [key, row] of view.entries(t)) {
            if (!touchedRows.has(JSON.stringify([t, key])) && old.has(key)) expect(row).toBe(old.get(key));
          }
        }
        const snapshot = new Map(view.tableNames().map((t) => [t, new Map(view.entries(t))]));
        const changed = view.replaceAll(toKeyed(toCompact(expected)));
        expect(changed.size).toBe(0);
        for (const t of view.tableNames()) {
          for (const [key, row] of view.entries(t)) expect(row).toBe(snapshot.get(t)?.get(key));
        }
      }),
      params,
    );
  });
});

describe('View.replay is rebase, one patch at a time, on a small document', () => {
  const intents = fc.array(fc.oneof(intentArb, rowIntentArb), { minLength: 1, maxLength: 8 });

  it('gives the same document and the same conflicts as rebase on the whole document', () => {
    fc.assert(
      fc.property(
        docArb,
        fc.array(intents, { minLength: 1, maxLength: 4 }),
        fc.array(fc.oneof(intentArb, rowIntentArb, rowIntentArb), { maxLength: 20 }),
        (base, local, remote) => {
          // local patches made on `base`, replayed on a base that others changed meanwhile
          const { patches } = materializePatches(toKeyed(base), local);
          const { doc: newer } = materialize(toKeyed(base), remote);
          const expected = rebase(newer, patches);
          const view = View.fromKeyed(toKeyed(toCompact(newer)));
          const conflicts = patches.flatMap((p) => view.replay(p));
          expect(toCompact(view.toKeyed())).toEqual(toCompact(expected.doc));
          expect(conflicts).toEqual(expected.conflicts);
        },
      ),
      params,
    );
  });
});
