import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { applyCompact, type CompactDoc, compile, type PatchOp, toKeyed } from '../../src/doc/index.js';
import { UserDbError } from '../../src/errors.js';
import {
  docArb,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  intentArb,
  materialize,
  rowIntentArb,
} from './arbitraries.js';
import { sampleDoc } from './fixtures.js';

function fails(doc: CompactDoc, ops: PatchOp[]): UserDbError {
  try {
    applyCompact(doc, ops);
  } catch (e) {
    if (e instanceof UserDbError) return e;
    throw e;
  }
  throw new Error('expected applyCompact to throw');
}

const rows = (doc: CompactDoc, t = 'projects') => doc.tables[t]?.rows.map((r) => r[0]);

describe('applyCompact', () => {
  it('applies add (insert, append, object member), remove, replace and test', () => {
    const doc = applyCompact(sampleDoc(), [
      { op: 'add', path: '/tables/projects/rows/1', value: ['p_x', 'X', 'open', null] },
      { op: 'add', path: '/tables/projects/rows/-', value: ['p_end', 'E', 'open', null] },
      { op: 'add', path: '/tables/projects/rows/5', value: ['p_last', 'L', 'open', null] },
      { op: 'remove', path: '/tables/projects/rows/0' },
      { op: 'replace', path: '/tables/projects/rows/0/1', value: 'X!' },
      { op: 'test', path: '/tables/projects/rows/0', value: ['p_x', 'X!', 'open', null] },
      {
        op: 'add',
        path: '/tables/empty',
        value: { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, rows: [] },
      },
      {
        op: 'add',
        path: '/tables/empty',
        value: { schema: { fields: [{ name: 'k', type: 'string' }], primaryKey: ['k'] }, rows: [] },
      },
      { op: 'remove', path: '/tables/members' },
    ]);
    expect(rows(doc)).toEqual(['p_x', 'p_2', 'p_3', 'p_end', 'p_last']);
    expect(doc.tables.projects?.rows[0]?.[1]).toBe('X!');
    expect(doc.tables.empty?.schema.primaryKey).toEqual(['k']);
    expect(doc.tables.members).toBeUndefined();
  });

  it('compares structurally in test (member order ignored, array order not)', () => {
    const doc = applyCompact(sampleDoc(), [
      { op: 'replace', path: '/tables/projects/rows/0/1', value: { a: 1, b: [1, 2] } as never },
      { op: 'test', path: '/tables/projects/rows/0/1', value: { b: [1, 2], a: 1 } as never },
    ]);
    expect(doc.tables.projects?.rows[0]?.[1]).toEqual({ a: 1, b: [1, 2] });
    expect(
      fails(doc, [{ op: 'test', path: '/tables/projects/rows/0/1', value: { a: 1, b: [2, 1] } as never }])
        .message,
    ).toMatch(/test failed/);
  });

  it('is immutable with structural sharing', () => {
    const base = sampleDoc();
    const snapshot = JSON.stringify(base);
    const next = applyCompact(base, [
      { op: 'replace', path: '/tables/projects/rows/1/1', value: 'a' },
      { op: 'replace', path: '/tables/projects/rows/1/2', value: 'b' },
      { op: 'remove', path: '/tables/projects/rows/0' },
    ]);
    expect(JSON.stringify(base)).toBe(snapshot);
    expect(next.tables.members).toBe(base.tables.members);
    expect(next.tables.projects?.schema).toBe(base.tables.projects?.schema);
    expect(next.tables.projects?.rows[1]).toBe(base.tables.projects?.rows[2]);
    expect(next.tables.projects?.rows[0]).toEqual(['p_2', 'a', 'b', null]);
    expect(applyCompact(base, [])).toBe(base);
  });

  it('rejects every op outside the subset with bad_patch naming the op index', () => {
    const ok: PatchOp = { op: 'replace', path: '/tables/projects/rows/0/1', value: 'ok' };
    const bad: [PatchOp, RegExp][] = [
      [{ op: 'replace', path: '', value: {} }, /root path/],
      [{ op: 'remove', path: 'tables' }, /pointer/],
      [{ op: 'remove', path: '/tables/projects/rows/~2' }, /pointer/],
      [{ op: 'remove', path: '/tables/projects/rows/-' }, /out of range/],
      [{ op: 'replace', path: '/tables/projects/rows/01', value: [] }, /out of range/],
      [{ op: 'replace', path: '/tables/projects/rows/3', value: [] }, /out of range/],
      [{ op: 'add', path: '/tables/projects/rows/4', value: [] }, /out of range/],
      [{ op: 'add', path: '/tables/projects/rows/-/0', value: 1 }, /path not found/],
      [{ op: 'remove', path: '/tables/nope' }, /path not found/],
      [{ op: 'replace', path: '/tables/nope', value: 1 }, /path not found/],
      [{ op: 'add', path: '/tables/nope/rows', value: [] }, /path not found/],
      [{ op: 'add', path: '/tables/projects/rows/0/1/x', value: 1 }, /path not found/],
      [{ op: 'test', path: '/tables/nope', value: null }, /path not found/],
      [{ op: 'test', path: '/tables/projects/rows/0/1', value: 'nope' }, /test failed/],
      [{ op: 'move', from: '/a', path: '/b' } as unknown as PatchOp, /unsupported op/],
      [{ op: 'copy', from: '/a', path: '/b' } as unknown as PatchOp, /unsupported op/],
      [{ op: 'add', path: '/tables/x' } as unknown as PatchOp, /missing "value"/],
      [{ op: 'add', path: '/tables/x', value: [undefined] } as unknown as PatchOp, /not JSON/],
      [{ op: 'add', path: '/tables/x', value: Number.NaN }, /not JSON/],
    ];
    for (const [op, message] of bad) {
      const e = fails(sampleDoc(), [ok, op]);
      expect(e.code, op.path).toBe('bad_patch');
      expect(e.message, op.path).toMatch(/^op 1 \(/);
      expect(e.message, op.path).toMatch(message);
    }
  });

  it('treats __proto__ and constructor as ordinary members (fast-json-patch refuses them)', () => {
    const table = {
      schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] },
      rows: [['__proto__']],
    };
    const ops: PatchOp[] = [
      { op: 'add', path: '/tables/__proto__', value: table as never },
      { op: 'add', path: '/tables/constructor', value: table as never },
      { op: 'replace', path: '/tables/__proto__/rows/0/0', value: 'x' },
    ];
    const doc = applyCompact(sampleDoc(), ops);
    expect(Object.getPrototypeOf(doc.tables)).toBe(Object.prototype);
    expect(Object.keys(doc.tables)).toEqual(['projects', 'members', '__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(doc.tables, '__proto__')?.value.rows).toEqual([['x']]);
    expect(({} as Record<string, unknown>).rows).toBeUndefined();
    expect(() => jsonPatch.applyPatch(sampleDoc(), ops, true, false)).toThrowError(/banned/);
    expect(fails(doc, [{ op: 'remove', path: '/tables/toString' }]).message).toMatch(/path not found/);
  });

  it(
    'agrees with fast-json-patch on every compiled patch (standard RFC 6902)',
    () => {
      const proto = (ops: readonly PatchOp[]) =>
        ops.some((op) => /\/(__proto__|prototype|constructor)(\/|$)/.test(op.path));
      fc.assert(
        fc.property(
          docArb,
          fc.array(fc.oneof(intentArb, rowIntentArb), { minLength: 4, maxLength: 30, size: 'medium' }),
          (base, intents) => {
            const { ops } = materialize(toKeyed(base), intents);
            const compiled = compile(ops, base);
            if (proto(compiled)) return; // fast-json-patch refuses these names (see above)
            const reference = jsonPatch.applyPatch(
              structuredClone(base),
              structuredClone(compiled),
              false, // the ops are valid by construction; validation would deep-clone the document per op
              true, // mutate the clone in place (no JSON clone, so -0 is kept on both sides)
            ).newDocument;
            // JSON has no -0: compare the documents as the server would store them.
            expect(JSON.stringify(applyCompact(base, compiled))).toBe(JSON.stringify(reference));
          },
        ),
        { numRuns: FUZZ_RUNS, seed: FUZZ_SEED },
      );
    },
    FUZZ_TIMEOUT,
  );
});
