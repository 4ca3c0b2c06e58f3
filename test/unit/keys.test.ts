import { describe, expect, it } from 'vitest';
import { keyOf, rowKey, type TableSchema } from '../../src/doc/index.js';
import { SchemaError, ValidationError } from '../../src/errors.js';

const byId: TableSchema = {
  fields: [
    { name: 'id', type: 'string' },
    { name: 'title', type: 'string' },
  ],
  primaryKey: ['id'],
};
const byNumber: TableSchema = { fields: [{ name: 'n', type: 'integer' }], primaryKey: ['n'] };
const byDate: TableSchema = { fields: [{ name: 'day', type: 'date' }], primaryKey: ['day'] };
const composite: TableSchema = {
  fields: [
    { name: 'org', type: 'integer' },
    { name: 'user', type: 'string' },
    { name: 'role', type: 'string' },
  ],
  primaryKey: ['org', 'user'],
};

describe('rowKey / keyOf', () => {
  it('uses a string key as is and JSON for other types', () => {
    expect(rowKey(byId, { id: 'p_1', title: 'x' })).toBe('p_1');
    expect(rowKey(byNumber, { n: 42 })).toBe('42');
    expect(rowKey({ fields: [{ name: 'b', type: 'boolean' }], primaryKey: ['b'] }, { b: false })).toBe(
      'false',
    );
    expect(rowKey(byDate, { day: '2025-10-14' })).toBe('2025-10-14');
    expect(rowKey(composite, { org: 1, user: 'ann', role: 'admin' })).toBe('[1,"ann"]');
  });

  it('gives the same key from an application key', () => {
    expect(keyOf(byId, 'p_1')).toBe(rowKey(byId, { id: 'p_1', title: null }));
    expect(keyOf(byId, ['p_1'])).toBe('p_1');
    expect(keyOf(byNumber, 42)).toBe('42');
    expect(keyOf(composite, [1, 'ann'])).toBe('[1,"ann"]');
    expect(keyOf(byDate, new Date('2025-10-14T12:00:00Z') as unknown as string)).toBe('2025-10-14');
  });

  it('is injective where naive concatenation is not', () => {
    const a = rowKey(composite, { org: 1, user: '2,3', role: null });
    const b = rowKey({ ...composite, fields: composite.fields }, { org: 12, user: '3', role: null });
    expect(a).not.toBe(b);
    const strings: TableSchema = {
      fields: [
        { name: 'a', type: 'string' },
        { name: 'b', type: 'string' },
      ],
      primaryKey: ['a', 'b'],
    };
    expect(rowKey(strings, { a: 'x","y', b: 'z' })).not.toBe(rowKey(strings, { a: 'x', b: 'y","z' }));
  });

  it('rejects null, missing, mistyped keys and the wrong arity', () => {
    expect(() => keyOf(byId, null)).toThrowError(ValidationError);
    expect(() => keyOf(composite, [1])).toThrowError(/2 value/);
    expect(() => keyOf(composite, 1)).toThrowError(/composite key/);
    expect(() => keyOf(composite, [1, null])).toThrowError(/null/);
    expect(() => keyOf(byNumber, 1.5, 'nums')).toThrowError(/table "nums".*field "n"/);
    expect(() => rowKey(byId, { title: 'x' }, 'projects')).toThrowError(
      /missing.*table "projects".*field "id"/,
    );
    expect(() => rowKey(byId, { id: null })).toThrowError(ValidationError);
  });

  it('rejects key fields of non-key types', () => {
    const bad: TableSchema = { fields: [{ name: 'o', type: 'object' }], primaryKey: ['o'] };
    expect(() => keyOf(bad, 'x')).toThrowError(SchemaError);
    expect(() => rowKey({ fields: [], primaryKey: ['id'] }, { id: 'x' })).toThrowError(SchemaError);
  });

  it('handles prototype-like names as ordinary names', () => {
    const odd: TableSchema = { fields: [{ name: '__proto__', type: 'string' }], primaryKey: ['__proto__'] };
    const row = JSON.parse('{"__proto__": "k"}') as Record<string, string>;
    expect(rowKey(odd, row)).toBe('k');
    expect(() => rowKey(odd, {})).toThrowError(/missing/);
    const ctor: TableSchema = {
      fields: [{ name: 'constructor', type: 'string' }],
      primaryKey: ['constructor'],
    };
    expect(() => rowKey(ctor, {})).toThrowError(/missing/);
  });
});
