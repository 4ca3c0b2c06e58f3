import { describe, expect, it } from 'vitest';
import {
  escapePointer,
  keyedPath,
  parseKeyedPath,
  splitPointer,
  unescapePointer,
} from '../../src/doc/index.js';
import { UserDbError } from '../../src/errors.js';

describe('JSON pointer segments', () => {
  it('escapes ~ and / and round-trips', () => {
    expect(escapePointer('a/b~c')).toBe('a~1b~0c');
    expect(escapePointer('~1')).toBe('~01');
    for (const s of ['', 'plain', '~', '/', '~1', '~0/', 'a//b', '__proto__']) {
      expect(unescapePointer(escapePointer(s))).toBe(s);
    }
    expect(splitPointer('/tables/a~1b/rows/~0~1')).toEqual(['tables', 'a/b', 'rows', '~/']);
    expect(splitPointer('')).toEqual([]);
  });

  it('rejects bad escapes and relative pointers with bad_patch', () => {
    expect(() => unescapePointer('a~2')).toThrowError(UserDbError);
    expect(() => unescapePointer('a~')).toThrowError(/escape/);
    expect(() => splitPointer('tables')).toThrowError(/start with/);
  });
});

describe('keyed paths', () => {
  it('builds and parses every target', () => {
    expect(keyedPath.table('t')).toBe('/tables/t');
    expect(keyedPath.schema('t')).toBe('/tables/t/schema');
    expect(keyedPath.fields('t')).toBe('/tables/t/schema/fields/-');
    expect(keyedPath.row('t', 'a/b')).toBe('/tables/t/rows/a~1b');
    expect(keyedPath.cell('t/x', '[1,"a"]', 'f~')).toBe('/tables/t~1x/rows/[1,"a"]/f~0');
    expect(parseKeyedPath(keyedPath.table('t/x'))).toEqual({ target: 'table', table: 't/x' });
    expect(parseKeyedPath(keyedPath.schema('t'))).toEqual({ target: 'schema', table: 't' });
    expect(parseKeyedPath(keyedPath.fields('t'))).toEqual({ target: 'fields', table: 't' });
    expect(parseKeyedPath(keyedPath.row('t', '__proto__'))).toEqual({
      target: 'row',
      table: 't',
      row: '__proto__',
    });
    expect(parseKeyedPath(keyedPath.cell('t', '', 'constructor'))).toEqual({
      target: 'cell',
      table: 't',
      row: '',
      field: 'constructor',
    });
  });

  it('rejects any other path with bad_patch', () => {
    for (const p of [
      '',
      '/',
      '/tables',
      '/version',
      '/tables/t/rows',
      '/tables/t/rows/k/f/extra',
      '/tables/t/schema/fields',
      '/tables/t/schema/fields/0',
      '/tables/t/schema/primaryKey',
      '/tables/t/other',
      'tables/t',
      '/tables/t/rows/~2',
    ]) {
      let err: unknown;
      try {
        parseKeyedPath(p);
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(UserDbError);
      expect((err as UserDbError).code).toBe('bad_patch');
    }
  });
});
