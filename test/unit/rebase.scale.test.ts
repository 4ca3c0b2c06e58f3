import { describe, expect, it } from 'vitest';
import {
  applyKeyed,
  type KeyedDoc,
  keyedOp as O,
  type PatchOp,
  type Row,
  rebase,
} from '../../src/doc/index.js';

describe('rebase at scale', () => {
  it('rebases 10k single-row patches on a 10k-row table, rewriting and reporting each conflict', () => {
    const n = 10_000;
    const rows: Record<string, Row> = {};
    for (let i = 0; i < n; i++) rows[`r${i}`] = { id: `r${i}`, title: `t${i}`, n: i };
    const base: KeyedDoc = {
      version: 1,
      tables: {
        big: {
          schema: {
            fields: [
              { name: 'id', type: 'string' },
              { name: 'title', type: 'string' },
              { name: 'n', type: 'integer' },
            ],
            primaryKey: ['id'],
          },
          rows,
        },
        other: { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['id'] }, rows: {} },
      },
    };
    // Remotely, every 10th row was deleted and every 7th row retitled.
    const remote: PatchOp[] = [];
    for (let i = 0; i < n; i++) {
      if (i % 10 === 0) remote.push(O.removeRow('big', `r${i}`));
      else if (i % 7 === 0) remote.push(O.setCell('big', `r${i}`, 'title', `remote${i}`));
    }
    const newer = applyKeyed(base, remote);
    // Locally, one patch per row: retitle it (the test records the title the edit overwrote).
    const pending: PatchOp[][] = [];
    for (let i = 0; i < n; i++) {
      pending.push([
        O.test('big', `r${i}`, 'title', `t${i}`),
        O.setCell('big', `r${i}`, 'title', `local${i}`),
      ]);
    }

    const r = rebase(newer, pending);

    expect(r.patches).toHaveLength(n);
    let retitled = 0;
    for (let i = 0; i < n; i++) {
      if (i % 10 === 0) expect(r.patches[i]).toEqual([]);
      else if (i % 7 === 0) {
        retitled++;
        expect(r.patches[i]).toEqual([
          O.test('big', `r${i}`, 'title', `remote${i}`),
          O.setCell('big', `r${i}`, 'title', `local${i}`),
        ]);
      } else expect(r.patches[i]).toEqual(pending[i]);
    }
    const deleted = r.conflicts.filter((c) => c.kind === 'row_deleted');
    const changed = r.conflicts.filter((c) => c.kind === 'field_changed');
    expect(deleted).toHaveLength(n / 10);
    expect(changed).toHaveLength(retitled);
    expect(r.conflicts).toHaveLength(deleted.length + changed.length);
    expect(changed[0]).toEqual({
      kind: 'field_changed',
      table: 'big',
      key: 'r7',
      field: 'title',
      local: 'local7',
      remote: 'remote7',
      resolution: 'applied',
    });

    const big = r.doc.tables.big?.rows ?? {};
    expect(Object.keys(big)).toHaveLength(n - n / 10);
    for (let i = 0; i < n; i++) {
      expect(big[`r${i}`]).toEqual(i % 10 === 0 ? undefined : { id: `r${i}`, title: `local${i}`, n: i });
    }
    // The rewritten patches, concatenated, are strictly valid on the newer base and lead to the doc.
    expect(applyKeyed(newer, r.patches.flat())).toEqual(r.doc);
    // Untouched tables keep their identity; the inputs are left as they were.
    expect(r.doc.tables.other).toBe(newer.tables.other);
    expect(Object.keys(newer.tables.big?.rows ?? {})).toHaveLength(n - n / 10);
    expect(newer.tables.big?.rows.r1?.title).toBe('t1');
    expect(base.tables.big?.rows).toBe(rows);
    expect(rows.r0?.title).toBe('t0');
  });
});
