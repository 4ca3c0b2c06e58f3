/** Reading the delta answers of `userdb_pull` and the change Broadcasts (src/remote). */
import { describe, expect, it } from 'vitest';
import { ServerError } from '../../src/errors.js';
import { InvalidChangeError, parsePullAnswer, toBroadcastChange } from '../../src/remote/index.js';

const t = (s: number) => `2026-01-02 03:04:0${s}.5+00`;
const canon = (s: number) => `2026-01-02T03:04:0${s}.500000Z`;
const op = { op: 'replace', path: '/tables/p/rows/0/1', value: 'x' };
const change = (a: number, b: number, extra: Record<string, unknown> = {}) => ({
  before: t(a),
  after: t(b),
  ops: [op],
  client_id: null,
  batch_seq: null,
  ...extra,
});

describe('parsePullAnswer', () => {
  it('reads a continuous chain into typed changes with canonical tokens', () => {
    const answer = parsePullAnswer(
      { changes: [change(1, 2, { client_id: 'c1', batch_seq: 7 }), change(2, 3)], updated_at: t(3) },
      canon(1),
    );
    expect(answer).toEqual({
      kind: 'changes',
      updatedAt: canon(3),
      changes: [
        { before: canon(1), after: canon(2), ops: [op], clientId: 'c1', batchSeq: 7 },
        { before: canon(2), after: canon(3), ops: [op], clientId: null, batchSeq: null },
      ],
    });
  });

  it('reads a chain whose later changes carry no before (each starts at the previous after)', () => {
    const { before: _, ...later } = change(2, 3);
    const answer = parsePullAnswer({ changes: [change(1, 2), later], updated_at: t(3) }, canon(1));
    expect(answer?.kind === 'changes' && answer.changes.map((c) => [c.before, c.after])).toEqual([
      [canon(1), canon(2)],
      [canon(2), canon(3)],
    ]);
    // a first change without before starts at since; without since it cannot be placed
    const { before: __, ...first } = change(1, 2);
    expect(parsePullAnswer({ changes: [first], updated_at: t(2) }, canon(1))?.kind).toBe('changes');
    expect(() => parsePullAnswer({ changes: [first], updated_at: t(2) }, null)).toThrow(InvalidChangeError);
  });

  it('reads a whole document and null', () => {
    const doc = { version: 1, tables: {} };
    expect(parsePullAnswer({ db: doc, updated_at: t(1) }, null)).toEqual({
      kind: 'doc',
      snapshot: { doc, updatedAt: canon(1) },
    });
    expect(parsePullAnswer(null, canon(1))).toBeNull();
  });

  it.each([
    ['a gap', { changes: [change(1, 2), change(3, 4)], updated_at: t(4) }],
    ['a chain that does not start at since', { changes: [change(2, 3)], updated_at: t(3) }],
    ['a chain that does not end at updated_at', { changes: [change(1, 2)], updated_at: t(5) }],
    ['a change without ops', { changes: [change(1, 2, { ops: null })], updated_at: t(2) }],
    [
      'an op outside the subset',
      { changes: [change(1, 2, { ops: [{ op: 'move', path: '/a', from: '/b' }] })], updated_at: t(2) },
    ],
    ['a bad token', { changes: [change(1, 2, { after: 'yesterday' })], updated_at: t(2) }],
    ['an empty chain', { changes: [], updated_at: t(2) }],
  ])('refuses %s with InvalidChangeError', (_what, data) => {
    expect(() => parsePullAnswer(data, canon(1))).toThrow(InvalidChangeError);
  });

  it('an answer of neither shape is a ServerError', () => {
    expect(() => parsePullAnswer({ nope: 1 }, canon(1))).toThrow(ServerError);
  });
});

describe('toBroadcastChange', () => {
  it('reads a change payload', () => {
    expect(toBroadcastChange(change(1, 2, { client_id: 'c', batch_seq: 3 }))).toEqual({
      updatedAt: canon(2),
      snapshot: null,
      delta: { before: canon(1), after: canon(2), ops: [op], clientId: 'c', batchSeq: 3 },
    });
  });

  it('a payload without ops is a poke with tokens; anything malformed is a bare poke', () => {
    expect(toBroadcastChange({ before: t(1), after: t(2), ops: null })).toMatchObject({
      updatedAt: canon(2),
      delta: { ops: null, clientId: null, batchSeq: null },
    });
    expect(toBroadcastChange({ before: 'x', after: t(2) })).toEqual({ updatedAt: null, snapshot: null });
    expect(toBroadcastChange('junk')).toEqual({ updatedAt: null, snapshot: null });
  });
});
