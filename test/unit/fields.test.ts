import { describe, expect, it } from 'vitest';
import { encodeValue, FIELD_TYPES, type FieldType, isValidValue } from '../../src/doc/index.js';
import { ValidationError } from '../../src/errors.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const valid: Record<FieldType, unknown[]> = {
  string: ['', 'x', 'ünïcødé', '2025-01-01'],
  number: [0, -1.5, 1e308, Number.MIN_VALUE, -0],
  integer: [0, -7, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 3.0],
  boolean: [true, false],
  date: ['2025-10-14', '2024-02-29', '0001-01-01', '9999-12-31'],
  time: ['00:00:00', '23:59:59', '12:30:45.123', '12:30:45.123456'],
  datetime: [
    '2025-10-14T00:00:00Z',
    '2025-10-14T00:00:00.123Z',
    '2025-10-14T23:59:59.123456+05:30',
    '2025-10-14T00:00:00-08:00',
  ],
  object: [{}, { a: 1, b: [null, 'x', { c: true }] }, JSON.parse('{"__proto__": 1}')],
  array: [[], [1, 'a', null, { b: [] }]],
  any: ['x', 1, true, [1], { a: null }],
};

const invalid: Record<FieldType, unknown[]> = {
  string: [1, true, {}, [], undefined, new Date(0)],
  number: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '1', 10n, undefined],
  integer: [1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Number.POSITIVE_INFINITY, '1'],
  boolean: [0, 1, 'true', undefined],
  date: ['2025-02-29', '2025-13-01', '2025-00-10', '2025-1-1', '2025-10-14T00:00:00Z', 20251014],
  time: ['24:00:00', '12:60:00', '12:00:60', '12:00', '12:00:00Z', '1:00:00', 1200],
  datetime: [
    '2025-10-14',
    '2025-10-14 00:00:00Z',
    '2025-10-14T00:00:00',
    '2025-10-14T25:00:00Z',
    '2025-02-30T00:00:00Z',
    '2025-10-14T00:00:00+24:00',
    0,
  ],
  object: [[], 'x', new Map(), new Point(1, 2), new Date(0), { f: () => 1 }, { u: undefined }],
  array: [{}, 'x', [undefined], [() => 1], [Symbol('s')], [1n], [Number.NaN], [new Point(1, 2)]],
  any: [undefined, () => 1, Symbol('s'), 1n, Number.NaN, new Map(), new Point(0, 0), [undefined]],
};

describe('field types', () => {
  it('lists the ten Frictionless types', () => {
    expect([...FIELD_TYPES].sort()).toEqual(
      ['any', 'array', 'boolean', 'date', 'datetime', 'integer', 'number', 'object', 'string', 'time'].sort(),
    );
  });

  for (const type of FIELD_TYPES) {
    it(`${type}: accepts valid encodings and null`, () => {
      for (const v of valid[type]) expect(isValidValue(type, v), JSON.stringify(v)).toBe(true);
      expect(isValidValue(type, null)).toBe(true);
      for (const v of valid[type]) expect(encodeValue(type, v)).toBe(Object.is(v, -0) ? 0 : v);
    });

    it(`${type}: rejects invalid values with a ValidationError naming the place`, () => {
      for (const v of invalid[type]) {
        expect(isValidValue(type, v), typeof v).toBe(false);
        const where = { table: 'projects', key: 'p_1', field: 'f' };
        expect(() => encodeValue(type, v, where)).toThrowError(ValidationError);
        try {
          encodeValue(type, v, where);
        } catch (e) {
          const err = e as ValidationError;
          expect(err.code).toBe('validation');
          expect(err.message).toContain('table "projects"');
          expect(err.message).toContain('row "p_1"');
          expect(err.message).toContain('field "f"');
          expect(err.field).toBe('f');
        }
      }
    });
  }

  it('converts a Date for datetime (toISOString) and date (its UTC date)', () => {
    expect(encodeValue('datetime', new Date(Date.UTC(2025, 9, 14, 1, 2, 3, 4)))).toBe(
      '2025-10-14T01:02:03.004Z',
    );
    expect(encodeValue('date', new Date('2025-10-14T23:30:00-05:00'))).toBe('2025-10-15');
    expect(() => encodeValue('datetime', new Date(Number.NaN))).toThrowError(/invalid Date/);
    expect(() => encodeValue('date', new Date(Number.NaN))).toThrowError(ValidationError);
    expect(() => encodeValue('time', new Date(0))).toThrowError(ValidationError);
    expect(() => encodeValue('string', new Date(0))).toThrowError(ValidationError);
    expect(isValidValue('datetime', new Date(0))).toBe(false);
  });

  it('names the offending part of a nested value', () => {
    expect(() => encodeValue('array', [1, undefined, 3], { field: 'tags' })).toThrowError(/undefined.*\[1\]/);
    expect(() => encodeValue('object', { a: { b: () => 1 } })).toThrowError(/function at \.a\.b/);
    expect(() => encodeValue('any', [new Point(1, 2)])).toThrowError(/Point instance/);
    expect(() => encodeValue('number', Number.POSITIVE_INFINITY)).toThrowError(/Infinity/);
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point of this case
    expect(() => encodeValue('array', [1, , 3])).toThrowError(/hole/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeValue('object', cyclic)).toThrowError(/circular/);
    expect(() => encodeValue('object', { [Symbol('s')]: 1 })).toThrowError(/symbol-keyed/);
  });

  it('stores negative zero as 0, as JSON does', () => {
    expect(Object.is(encodeValue('number', -0), 0)).toBe(true);
    expect(Object.is(encodeValue('integer', -0), 0)).toBe(true);
  });

  it('accepts a null-prototype object and strings over 1 MB', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(isValidValue('object', bare)).toBe(true);
    const big = 'x'.repeat(1024 * 1024 + 17);
    expect(encodeValue('string', big)).toBe(big);
    expect(encodeValue('any', { big })).toEqual({ big });
  });
});
