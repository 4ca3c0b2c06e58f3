import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyCompact,
  applyKeyed,
  type CompactDoc,
  canonicalCompact,
  compile,
  type Json,
  type PatchOp,
  parseCompactDoc,
  parseKeyedPath,
  rowKey,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  intentArb,
  materialize,
  rowIntentArb,
} from './arbitraries.js';

const params = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };

function tableOf(doc: CompactDoc, name: string) {
  return Object.hasOwn(doc.tables, name) ? doc.tables[name] : undefined;
}

/** The row keys a table should hold, in order, after row-only ops on the compact base. */
function expectedOrder(base: CompactDoc, name: string, ops: readonly PatchOp[]): string[] {
  const t = tableOf(base, name);
  if (t === undefined) return [];
  const order = t.rows.map((values) =>
    rowKey(t.schema, Object.fromEntries(t.schema.fields.map((f, i) => [f.name, values[i] as Json]))),
  );
  for (const op of ops) {
    const p = parseKeyedPath(op.path);
    if (p.table !== name || p.target !== 'row') continue;
    if (op.op === 'add') order.push(p.row as string);
    if (op.op === 'remove') order.splice(order.indexOf(p.row as string), 1);
  }
  return order;
}

describe('compile (property)', () => {
  it(
    'applyCompact(base, compile(p, base)) equals toCompact(applyKeyed(toKeyed(base), p))',
    () => {
      fc.assert(
        fc.property(
          docArb,
          fc.array(fc.oneof(intentArb, rowIntentArb), { minLength: 4, maxLength: 30, size: 'medium' }),
          (base, intents) => {
            const { ops, doc: keyed } = materialize(toKeyed(base), intents);
            const snapshot = JSON.stringify(base);
            const compiled = compile(ops, base);
            const viaCompact = applyCompact(base, compiled);
            expect(JSON.stringify(base)).toBe(snapshot);
            expect(canonicalCompact(viaCompact)).toEqual(canonicalCompact(toCompact(keyed)));
            expect(canonicalCompact(viaCompact)).toEqual(
              canonicalCompact(toCompact(applyKeyed(toKeyed(base), ops))),
            );
            // The result is a valid document, and the patch survives the trip through JSON to the server.
            parseCompactDoc(viaCompact);
            const wire = JSON.parse(JSON.stringify(compiled)) as PatchOp[];
            expect(JSON.stringify(canonicalCompact(applyCompact(base, wire)))).toBe(
              JSON.stringify(canonicalCompact(viaCompact)),
            );
          },
        ),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'keeps base order with appends at the end, so client and server agree row for row',
    () => {
      fc.assert(
        fc.property(
          docArb,
          fc.array(fc.oneof(intentArb, rowIntentArb), { maxLength: 25 }),
          (base, intents) => {
            const { ops } = materialize(toKeyed(base), intents);
            const structural = new Set(
              ops
                .map((op) => parseKeyedPath(op.path))
                .filter((p) => p.target !== 'row' && p.target !== 'cell')
                .map((p) => p.table),
            );
            const result = applyCompact(base, compile(ops, base));
            for (const name of Object.keys(result.tables)) {
              if (structural.has(name)) continue;
              const t = tableOf(result, name);
              if (t === undefined) continue;
              const keys = t.rows.map((values) =>
                rowKey(
                  t.schema,
                  Object.fromEntries(t.schema.fields.map((f, i) => [f.name, values[i] as Json])),
                ),
              );
              expect(keys).toEqual(expectedOrder(base, name, ops));
            }
          },
        ),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'is deterministic and does not emit test ops',
    () => {
      fc.assert(
        fc.property(docArb, fc.array(intentArb, { maxLength: 15 }), (base, intents) => {
          const { ops } = materialize(toKeyed(base), intents);
          const a = compile(ops, base);
          expect(compile(ops, base)).toEqual(a);
          expect(a.some((op) => op.op === 'test')).toBe(false);
        }),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );
});
