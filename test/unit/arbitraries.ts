/**
 * fast-check generators for documents and valid keyed edit sequences (all shapes of the keyed grammar).
 *
 * Edits are generated as "intents" (random choices) and materialized against the document as it
 * evolves, so every generated op is valid where it is applied.
 */
import fc from 'fast-check';
import {
  applyKeyed,
  type CompactDoc,
  type CompactTable,
  FIELD_TYPES,
  type FieldType,
  type Json,
  type KeyedDoc,
  type KeyedTable,
  keyedPath,
  type PatchOp,
  PK_FIELD_TYPES,
  parseCompactDoc,
  type Row,
  rowKey,
  type TableSchema,
  tableToKeyed,
} from '../../src/doc/index.js';
import { SchemaError } from '../../src/errors.js';

export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 200);
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261127);
/** Per-test timeout of the property tests: generous, as CI machines can be slow and FUZZ_RUNS large. */
export const FUZZ_TIMEOUT = 600_000;

const TABLE_NAMES = ['projects', '__proto__', 'constructor', 'a/b', '~t', 'toString', ''];
const FIELD_NAMES = ['id', 'title', '__proto__', 'constructor', 'a/b', '~f', 'n', 'v', 'hasOwnProperty'];

const tricky = fc.constantFrom(
  '__proto__',
  'constructor',
  'toString',
  'a/b',
  '~0',
  '~1',
  '',
  '[1]',
  '1',
  'null',
);
const stringArb = fc.oneof(tricky, fc.string({ maxLength: 4 }));
const dateArb = fc.date({
  min: new Date('0001-01-01T00:00:00Z'),
  max: new Date('9999-12-31T23:59:59Z'),
  noInvalidDate: true,
});
const pad = (n: number) => String(n).padStart(2, '0');
const timeArb = fc
  .tuple(
    fc.integer({ min: 0, max: 23 }),
    fc.integer({ min: 0, max: 59 }),
    fc.integer({ min: 0, max: 59 }),
    fc.boolean(),
  )
  .map(([h, m, s, frac]) => `${pad(h)}:${pad(m)}:${pad(s)}${frac ? '.125' : ''}`);
const jsonArb = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;

/** One random value of every field type (never null). */
export type ValueSeed = Record<FieldType, Json>;

const valueSeedArb: fc.Arbitrary<ValueSeed> = fc.record({
  string: stringArb,
  number: fc.double({ noNaN: true, noDefaultInfinity: true }),
  integer: fc.integer({ min: -5, max: 5 }),
  boolean: fc.boolean(),
  date: dateArb.map((d) => d.toISOString().slice(0, 10)),
  time: timeArb,
  datetime: dateArb.map((d) => d.toISOString()),
  object: fc.dictionary(stringArb, jsonArb, { maxKeys: 3 }) as fc.Arbitrary<Json>,
  array: fc.array(jsonArb, { maxLength: 3 }),
  any: jsonArb,
});

/** A seed plus which non-key values are null. */
const cellSeedArb = fc.record({
  values: valueSeedArb,
  nulls: fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
});
type CellSeed = { values: ValueSeed; nulls: boolean[] };

function valueFor(schema: TableSchema, index: number, seed: CellSeed): Json {
  const f = schema.fields[index] as { name: string; type: FieldType };
  if (!schema.primaryKey.includes(f.name) && seed.nulls[index % seed.nulls.length]) return null;
  return seed.values[f.type];
}

function rowFor(schema: TableSchema, seed: CellSeed): Row {
  const row: Row = {};
  schema.fields.forEach((f, i) => {
    Object.defineProperty(row, f.name, {
      value: valueFor(schema, i, seed),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  });
  return row;
}

export const schemaArb: fc.Arbitrary<TableSchema> = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom(...FIELD_NAMES), { minLength: 1, maxLength: 5 }),
    fc.array(fc.constantFrom(...FIELD_TYPES), { minLength: 5, maxLength: 5 }),
    fc.array(fc.constantFrom(...PK_FIELD_TYPES), { minLength: 2, maxLength: 2 }),
    fc.integer({ min: 1, max: 2 }),
  )
  .map(([names, types, pkTypes, pkCount]) => {
    const k = Math.min(pkCount, names.length);
    return {
      fields: names.map((name, i) => ({ name, type: (i < k ? pkTypes[i] : types[i]) as FieldType })),
      primaryKey: names.slice(0, k),
    };
  });

export const tableArb: fc.Arbitrary<CompactTable> = fc
  .tuple(schemaArb, fc.array(cellSeedArb, { maxLength: 12 }))
  .map(([schema, seeds]) => {
    const seen = new Set<string>();
    const rows: Json[][] = [];
    for (const seed of seeds) {
      const row = rowFor(schema, seed);
      const key = rowKey(schema, row);
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push(schema.fields.map((f) => row[f.name] as Json));
    }
    return { schema, rows };
  });

export const docArb: fc.Arbitrary<CompactDoc> = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom(...TABLE_NAMES), { minLength: 1, maxLength: 3 }),
    fc.array(tableArb, { minLength: 3, maxLength: 3 }),
  )
  .map(([names, tables]) => {
    const doc: CompactDoc = { version: 1, tables: {} };
    names.forEach((n, i) => {
      Object.defineProperty(doc.tables, n, {
        value: tables[i],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    });
    return parseCompactDoc(doc);
  });

/** A random choice to be turned into an edit valid for the current document. */
export interface Intent {
  kind: number;
  a: number;
  b: number;
  seed: CellSeed;
  table: CompactTable;
  type: FieldType;
}

function intentOf(kind: fc.Arbitrary<number>): fc.Arbitrary<Intent> {
  return fc.record({
    kind,
    a: fc.nat(),
    b: fc.nat(),
    seed: cellSeedArb,
    table: tableArb,
    type: fc.constantFrom(...FIELD_TYPES),
  });
}

/** Any edit; table-level edits (kinds 0–3) are rarer than row edits. */
export const intentArb: fc.Arbitrary<Intent> = intentOf(
  fc.constantFrom(0, 1, 2, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 9, 9),
);

/** Row and cell edits only (the tables keep their schemas). */
export const rowIntentArb: fc.Arbitrary<Intent> = intentOf(fc.constantFrom(4, 5, 6, 7, 8, 9));

const pick = <T>(items: readonly T[], n: number): T | undefined =>
  items.length === 0 ? undefined : items[n % items.length];

function own<T>(rec: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** The ops one intent becomes on `doc` (empty when it does not fit). */
export function opsFor(doc: KeyedDoc, it: Intent): PatchOp[] {
  const names = Object.keys(doc.tables);
  if (it.kind === 0) {
    const name = pick(
      TABLE_NAMES.filter((n) => !Object.hasOwn(doc.tables, n)),
      it.a,
    );
    if (name === undefined) return [];
    return [
      { op: 'add', path: keyedPath.table(name), value: tableToKeyed(name, it.table) as unknown as Json },
    ];
  }
  const name = pick(names, it.a);
  if (name === undefined) return [];
  const table = own(doc.tables, name) as KeyedTable;
  const { schema } = table;
  const keys = Object.keys(table.rows);
  const nonKey = schema.fields.filter((f) => !schema.primaryKey.includes(f.name));
  switch (it.kind) {
    case 1:
      return [{ op: 'remove', path: keyedPath.table(name) }];
    case 2: {
      const fields = [...schema.fields];
      const variant = it.b % 4;
      if (variant === 0 && nonKey.length > 0) fields.splice(fields.indexOf(pick(nonKey, it.b) as never), 1);
      else if (variant === 1) {
        const fresh = FIELD_NAMES.find((n) => !fields.some((f) => f.name === n));
        if (fresh === undefined) return [];
        fields.push({ name: fresh, type: it.type });
      } else if (variant === 2) fields.reverse();
      else {
        const candidates = fields.filter((f) => PK_FIELD_TYPES.includes(f.type));
        const pk = pick(candidates, it.b);
        if (pk === undefined) return [];
        return [
          {
            op: 'replace',
            path: keyedPath.schema(name),
            value: { fields, primaryKey: [pk.name] } as unknown as Json,
          },
        ];
      }
      return [
        {
          op: 'replace',
          path: keyedPath.schema(name),
          value: { fields, primaryKey: schema.primaryKey } as unknown as Json,
        },
      ];
    }
    case 3: {
      const fresh = pick(
        FIELD_NAMES.filter((n) => !schema.fields.some((f) => f.name === n)),
        it.b,
      );
      if (fresh === undefined) return [];
      return [{ op: 'add', path: keyedPath.fields(name), value: { name: fresh, type: it.type } }];
    }
    case 4:
    case 9: {
      const row = rowFor(schema, it.seed);
      const key = rowKey(schema, row);
      if (Object.hasOwn(table.rows, key)) return [];
      return [{ op: 'add', path: keyedPath.row(name, key), value: row }];
    }
    case 5: {
      const key = pick(keys, it.b);
      if (key === undefined) return [];
      const row = rowFor(schema, it.seed);
      for (const pk of schema.primaryKey) {
        Object.defineProperty(row, pk, {
          value: own(table.rows, key)?.[pk],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return [{ op: 'replace', path: keyedPath.row(name, key), value: row }];
    }
    case 6: {
      const key = pick(keys, it.b);
      return key === undefined ? [] : [{ op: 'remove', path: keyedPath.row(name, key) }];
    }
    default: {
      const key = pick(keys, it.b);
      const field = pick(nonKey, it.a >> 3);
      if (key === undefined || field === undefined) return [];
      const value = valueFor(schema, schema.fields.indexOf(field), it.seed);
      const path = keyedPath.cell(name, key, field.name);
      const replace: PatchOp = { op: 'replace', path, value };
      if (it.kind === 8) return [replace];
      const old = own(own(table.rows, key) as Row, field.name) ?? null;
      return [{ op: 'test', path, value: old }, replace];
    }
  }
}

/** Materializes intents one after the other; returns the ops and the document they lead to. */
export function materialize(doc: KeyedDoc, intents: readonly Intent[]): { ops: PatchOp[]; doc: KeyedDoc } {
  const ops: PatchOp[] = [];
  let current = doc;
  for (const it of intents) {
    const next = opsFor(current, it);
    if (next.length === 0) continue;
    try {
      current = applyKeyed(current, next);
    } catch (e) {
      // Only a primary-key change may legitimately not fit the data (duplicate or null keys).
      if (e instanceof SchemaError && it.kind === 2) continue;
      throw e;
    }
    ops.push(...next);
  }
  return { ops, doc: current };
}

/** Materializes a list of patches, each from its own intents, one after the other. */
export function materializePatches(
  doc: KeyedDoc,
  groups: readonly (readonly Intent[])[],
): { patches: PatchOp[][]; doc: KeyedDoc } {
  const patches: PatchOp[][] = [];
  let current = doc;
  for (const g of groups) {
    const r = materialize(current, g);
    patches.push(r.ops);
    current = r.doc;
  }
  return { patches, doc: current };
}
