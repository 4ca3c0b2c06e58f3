import { describe, expect, it } from 'vitest';
import { compactDocSchema, parseCompactDoc, toKeyed } from '../../src/doc/index.js';
import { SchemaError, UserDbError, ValidationError } from '../../src/errors.js';

const projects = () => ({
  schema: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'title', type: 'string' },
      { name: 'created_at', type: 'datetime' },
    ],
    primaryKey: ['id'],
  },
  rows: [
    ['p_1', 'First project', '2025-10-14T00:00:00Z'],
    ['p_2', null, null],
  ],
});

function thrown(fn: () => unknown): UserDbError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserDbError) return e;
    throw e;
  }
  throw new Error('expected a throw');
}

describe('compactDocSchema (structure)', () => {
  it('accepts the seed format', () => {
    expect(compactDocSchema.safeParse({ version: 1, tables: { projects: projects() } }).success).toBe(true);
    expect(compactDocSchema.safeParse({ version: 1, tables: {} }).success).toBe(true);
  });

  it('rejects bad structure, including in a table named __proto__', () => {
    expect(compactDocSchema.safeParse({ version: 2, tables: {} }).success).toBe(false);
    expect(compactDocSchema.safeParse({ version: 1, tables: [] }).success).toBe(false);
    const bad = JSON.parse(
      '{"version":1,"tables":{"__proto__":{"schema":{"fields":[],"primaryKey":["id"]},"rows":[]}}}',
    );
    const r = compactDocSchema.safeParse(bad);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path.slice(0, 2)).toEqual(['tables', '__proto__']);
  });
});

describe('parseCompactDoc', () => {
  it('returns a clean copy of a valid document', () => {
    const input = { version: 1, tables: { projects: projects() } };
    const doc = parseCompactDoc(input);
    expect(doc).toEqual(input);
    expect(doc.tables.projects).not.toBe(input.tables.projects);
  });

  it('keeps tables named like Object.prototype members', () => {
    const text = JSON.stringify({ version: 1, tables: { constructor: projects() } }).replace(
      '"constructor"',
      '"__proto__"',
    );
    const doc = parseCompactDoc(JSON.parse(text));
    expect(Object.keys(doc.tables)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(doc.tables)).toBe(Object.prototype);
    const [name, table] = Object.entries(toKeyed(doc).tables)[0] ?? [];
    expect(name).toBe('__proto__');
    expect(table?.rows.p_1?.title).toBe('First project');
  });

  it('rejects a non-object, a wrong version and a missing tables object', () => {
    expect(() => parseCompactDoc(null)).toThrowError(SchemaError);
    expect(() => parseCompactDoc({ version: 2, tables: {} })).toThrowError(/version/);
    expect(() => parseCompactDoc({ version: 1 })).toThrowError(/tables/);
  });

  it('rejects misaligned rows naming the table', () => {
    const t = projects();
    t.rows.push(['p_3', 'short']);
    const e = thrown(() => parseCompactDoc({ version: 1, tables: { projects: t } }));
    expect(e).toBeInstanceOf(SchemaError);
    expect(e.table).toBe('projects');
    expect(e.message).toMatch(/index 2.*2 values for 3 fields/);
  });

  it('rejects unknown field types naming the field', () => {
    const t = projects();
    (t.schema.fields[1] as { type: string }).type = 'uuid';
    const e = thrown(() => parseCompactDoc({ version: 1, tables: { projects: t } }));
    expect(e).toBeInstanceOf(SchemaError);
    expect(e.field).toBe('title');
  });

  it('rejects a primary key that is not a field, is empty, repeats, or has a non-key type', () => {
    const notField = projects();
    notField.schema.primaryKey = ['nope'];
    expect(thrown(() => parseCompactDoc({ version: 1, tables: { projects: notField } })).field).toBe('nope');
    const empty = projects();
    empty.schema.primaryKey = [];
    expect(() => parseCompactDoc({ version: 1, tables: { projects: empty } })).toThrowError(SchemaError);
    const twice = projects();
    twice.schema.primaryKey = ['id', 'id'];
    expect(() => parseCompactDoc({ version: 1, tables: { projects: twice } })).toThrowError(
      /duplicate primary key/,
    );
    const dupField = projects();
    dupField.schema.fields.push({ name: 'id', type: 'string' });
    dupField.rows = [];
    expect(() => parseCompactDoc({ version: 1, tables: { projects: dupField } })).toThrowError(
      /duplicate field/,
    );
    const objectKey = {
      schema: { fields: [{ name: 'o', type: 'object' }], primaryKey: ['o'] },
      rows: [],
    };
    expect(thrown(() => parseCompactDoc({ version: 1, tables: { t: objectKey } })).field).toBe('o');
  });

  it('rejects duplicate row keys naming the key', () => {
    const t = projects();
    t.rows.push(['p_1', 'again', null]);
    const e = thrown(() => parseCompactDoc({ version: 1, tables: { projects: t } }));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.key).toBe('p_1');
    expect(e.message).toMatch(/duplicate/);
  });

  it('rejects a null primary key naming the field', () => {
    const t = projects();
    t.rows.push([null, 'x', null]);
    const e = thrown(() => parseCompactDoc({ version: 1, tables: { projects: t } }));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.table).toBe('projects');
    expect(e.field).toBe('id');
  });

  it('rejects values of the wrong type naming table, key and field', () => {
    const t = projects();
    (t.rows[1] as unknown[])[2] = '2025-10-14';
    const e = thrown(() => parseCompactDoc({ version: 1, tables: { projects: t } }));
    expect(e).toBeInstanceOf(ValidationError);
    expect([e.table, e.key, e.field]).toEqual(['projects', 'p_2', 'created_at']);
    expect(e.message).toContain('row "p_2"');
  });
});
