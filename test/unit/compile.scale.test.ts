import { describe, expect, it } from 'vitest';
import {
  applyCompact,
  applyKeyed,
  type CompactDoc,
  canonicalCompact,
  compile,
  type Json,
  keyedOp as O,
  type PatchOp,
  toCompact,
  toKeyed,
} from '../../src/doc/index.js';

/** A deterministic pseudo-random generator (mulberry32), so the case is the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('compile at scale', () => {
  it('compiles 10k mixed ops against a 100k-row table, matching applyKeyed', () => {
    const n = 100_000;
    const rows: Json[][] = Array.from({ length: n }, (_, i) => [`r${i}`, i, i % 2 === 0]);
    const base: CompactDoc = {
      version: 1,
      tables: {
        big: {
          schema: {
            fields: [
              { name: 'id', type: 'string' },
              { name: 'n', type: 'integer' },
              { name: 'even', type: 'boolean' },
            ],
            primaryKey: ['id'],
          },
          rows,
        },
      },
    };
    const random = rng(7);
    const live = rows.map((r) => r[0] as string);
    const ops: PatchOp[] = [];
    let next = n;
    for (let i = 0; i < 10_000; i++) {
      const roll = random();
      const at = Math.floor(random() * live.length);
      const key = live[at] as string;
      if (roll < 0.3) {
        ops.push(O.removeRow('big', key));
        live[at] = live[live.length - 1] as string;
        live.pop();
      } else if (roll < 0.5) {
        const id = `r${next++}`;
        ops.push(O.addRow('big', id, { id, n: i, even: false }));
        live.push(id);
      } else if (roll < 0.6) {
        ops.push(O.replaceRow('big', key, { id: key, n: -i, even: true }));
      } else {
        ops.push(O.setCell('big', key, 'n', i));
      }
    }
    const compiled = compile(ops, base);
    expect(compiled.length).toBeLessThanOrEqual(ops.length);
    expect(compiled.filter((op) => op.op === 'add').every((op) => op.path === '/tables/big/rows/-')).toBe(
      true,
    );
    const viaCompact = applyCompact(base, compiled);
    const viaKeyed = toCompact(applyKeyed(toKeyed(base), ops));
    expect(viaCompact.tables.big?.rows.length).toBe(live.length);
    expect(canonicalCompact(viaCompact)).toEqual(canonicalCompact(viaKeyed));
  }, 600_000);
});
