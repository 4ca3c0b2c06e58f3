import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyKeyed,
  type KeyedDoc,
  type KeyedTable,
  type PatchOp,
  parseKeyedPath,
  type Row,
  rebase,
  sameSchema,
  toKeyed,
} from '../../src/doc/index.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  intentArb,
  materialize,
  materializePatches,
  rowIntentArb,
} from './arbitraries.js';

const params = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };

const own = <T>(rec: Record<string, T> | undefined, key: string): T | undefined =>
  rec !== undefined && Object.hasOwn(rec, key) ? rec[key] : undefined;

const intents = fc.array(fc.oneof(intentArb, rowIntentArb), { minLength: 1, maxLength: 8 });
const scenario = fc.record({
  base: docArb,
  local: fc.array(intents, { minLength: 1, maxLength: 4 }),
  remote: fc.array(fc.oneof(intentArb, rowIntentArb, rowIntentArb), { maxLength: 20, size: 'medium' }),
});

/** What the local patches last did to a row: removed it, wrote it whole, or set some of its cells. */
type RowFate = { kind: 'removed' } | { kind: 'row' } | { kind: 'cells'; fields: Set<string> };

function fates(patches: readonly PatchOp[][]) {
  const rows = new Map<string, Map<string, RowFate>>();
  const structural = new Set<string>();
  const named = new Set<string>();
  for (const op of patches.flat()) {
    const p = parseKeyedPath(op.path);
    named.add(p.table);
    if (p.target !== 'row' && p.target !== 'cell') {
      structural.add(p.table);
      continue;
    }
    if (op.op === 'test') continue;
    const table = rows.get(p.table) ?? new Map<string, RowFate>();
    rows.set(p.table, table);
    const key = p.row as string;
    const before = table.get(key);
    if (p.target === 'row') table.set(key, op.op === 'remove' ? { kind: 'removed' } : { kind: 'row' });
    else if (before?.kind === 'cells') before.fields.add(p.field as string);
    else if (before?.kind !== 'row') table.set(key, { kind: 'cells', fields: new Set([p.field as string]) });
  }
  return { rows, structural, named };
}

describe('rebase (property)', () => {
  it(
    'rewritten patches are strictly valid, in order, and lead to the returned doc',
    () => {
      fc.assert(
        fc.property(scenario, ({ base, local, remote }) => {
          const k0 = toKeyed(base);
          const { patches } = materializePatches(k0, local);
          const { doc: newer } = materialize(k0, remote);
          const r = rebase(newer, patches);
          expect(r.patches).toHaveLength(patches.length);
          let doc: KeyedDoc = newer;
          for (const p of r.patches) doc = applyKeyed(doc, p);
          expect(doc).toEqual(r.doc);
          // Rebasing on the base the patches were written against changes nothing and reports nothing.
          const same = rebase(k0, patches);
          expect(same.conflicts).toEqual([]);
          expect(same.patches).toEqual(patches);
        }),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'never touches a row no patch names; named rows get the local value; other fields keep the remote value',
    () => {
      fc.assert(
        fc.property(scenario, ({ base, local, remote }) => {
          const k0 = toKeyed(base);
          const { patches, doc: localDoc } = materializePatches(k0, local);
          const { doc: newer } = materialize(k0, remote);
          const r = rebase(newer, patches);
          const { rows, structural, named } = fates(patches);
          for (const name of Object.keys(newer.tables)) {
            const before = own(newer.tables, name) as KeyedTable;
            const after = own(r.doc.tables, name);
            if (!named.has(name)) {
              expect(after).toBe(before);
              continue;
            }
            if (structural.has(name) || after === undefined) continue;
            const fate = rows.get(name) ?? new Map<string, RowFate>();
            const localTable = own(localDoc.tables, name);
            // Keys are comparable only while both sides key the table the same way.
            if (localTable === undefined) continue;
            if (localTable.schema.primaryKey.join('\u0000') !== before.schema.primaryKey.join('\u0000'))
              continue;
            // Rows no patch names: the very same objects, and no others appear.
            for (const key of Object.keys(before.rows)) {
              if (!fate.has(key)) expect(own(after.rows, key)).toBe(own(before.rows, key));
            }
            for (const key of Object.keys(after.rows))
              expect(fate.has(key) || Object.hasOwn(before.rows, key)).toBe(true);
            // Rows the patches name, where remote and local agree on the schema.
            if (!sameSchema(localTable.schema, before.schema)) continue;
            for (const [key, f] of fate) {
              const got = own(after.rows, key);
              const mine = own(localTable.rows, key) as Row;
              if (f.kind === 'removed') expect(got).toBeUndefined();
              else if (got === undefined)
                continue; // deleted remotely: the delete wins (reported, see below)
              else if (f.kind === 'row') expect(got).toEqual(mine);
              else {
                const theirs = own(before.rows, key) as Row;
                for (const field of before.schema.fields.map((d) => d.name)) {
                  expect(own(got, field)).toEqual(
                    f.fields.has(field) ? own(mine, field) : own(theirs, field),
                  );
                }
              }
            }
          }
        }),
        params,
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'reports a conflict for every dropped edit (except removals of what is gone and no-op field adds)',
    () => {
      fc.assert(
        fc.property(scenario, ({ base, local, remote }) => {
          const k0 = toKeyed(base);
          const { patches } = materializePatches(k0, local);
          const { doc: newer } = materialize(k0, remote);
          let doc = newer;
          for (const patch of patches) {
            for (let j = 0; j < patch.length; j++) {
              const op = patch[j] as PatchOp;
              const before = rebase(doc, [patch.slice(0, j)]);
              const after = rebase(doc, [patch.slice(0, j + 1)]);
              const emitted = (after.patches[0] ?? []).slice((before.patches[0] ?? []).length);
              const reported = after.conflicts.slice(before.conflicts.length);
              expect(after.patches[0]?.slice(0, before.patches[0]?.length)).toEqual(before.patches[0]);
              const p = parseKeyedPath(op.path);
              const silent = op.op === 'remove' || op.op === 'test' || p.target === 'fields';
              if (emitted.length === 0 && !silent) {
                expect(reported.some((c) => c.resolution === 'dropped' && c.table === p.table)).toBe(true);
              }
              if (emitted.length > 0 && op.op !== 'test') {
                expect(reported.every((c) => c.resolution === 'applied' || c.field !== undefined)).toBe(true);
              }
              for (const c of reported) expect(c.table).toBe(p.table);
            }
            doc = rebase(doc, [patch]).doc;
          }
        }),
        { ...params, numRuns: Math.max(50, Math.floor(FUZZ_RUNS / 2)) },
      );
    },
    FUZZ_TIMEOUT,
  );
});
