/**
 * The table API: writes (insert, upsert, update, delete), reads (get, query) and live queries.
 */
import type { Observable } from 'rxjs';
import { type Json, jsonEqual, keyedPath, keyOf, type PatchOp, type Row } from '../doc/index.js';
import { DuplicateKeyError, NotFoundError, ValidationError } from '../errors.js';
import {
  explainQuery,
  LiveCount,
  LiveResult,
  type Maintained,
  type QueryExplain,
  type QuerySpec,
  type ReadLayer,
  runQuery,
  type SortDirection,
  sameRows,
  type View,
} from '../query/index.js';
import { encodeChanges, encodeRow, type TableContext } from './codec.js';
import type { DeclaredTable, TableTypes } from './schema.js';

/** A write in progress: the layer to validate against and the sink for its ops. */
export interface WriteScope {
  /** Current state: committed view plus the transaction's (or this write's) pending changes. */
  readonly layer: ReadLayer;
  /** Applies keyed ops to the pending state (strict) and records them for the outbox. */
  apply(ops: PatchOp[]): void;
}

/** The database services tables and queries use (implemented by `UserDb`). @internal */
export interface DbCore {
  /** Runs `fn` on the state a read should see (inside a transaction: including its pending writes). */
  read<T>(fn: (layer: ReadLayer) => T): Promise<T>;
  /**
   * Runs a write: `fn` validates and applies ops in `scope`, and returns how to read the result; the
   * promise resolves (with that result read from the committed state) after the commit, or at once
   * inside a transaction.
   */
  write<T>(fn: (scope: WriteScope) => (layer: ReadLayer) => T): Promise<T>;
  /** A live query over the committed state. */
  watch<T>(
    tables: readonly string[],
    evaluate: (layer: ReadLayer) => T,
    same: (a: T, b: T) => boolean,
  ): Observable<T>;
  /** A live value over the committed state, maintained from row-level changes. */
  maintain<T>(
    tables: readonly string[],
    open: () => Maintained<T>,
    same: (a: T, b: T) => boolean,
  ): Observable<T>;
  /** The committed view (what live values read). */
  view(): View;
  /** The declaration of a typed table. */
  declared(table: string): DeclaredTable | undefined;
}

/**
 * Comparison operators of {@link Query.where} other than `in`.
 *
 * @example
 * ```ts
 * const op: ComparisonOp = '>=';
 * ```
 */
export type ComparisonOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

function context(core: DbCore, layer: ReadLayer, table: string): TableContext {
  const schema = layer.schemaOf(table);
  if (schema === undefined) throw new NotFoundError('unknown table', { table });
  return { name: table, schema, declared: core.declared(table) };
}

function rowKeyOf(
  core: DbCore,
  layer: ReadLayer,
  table: string,
  key: unknown,
): { ctx: TableContext; key: string } {
  const ctx = context(core, layer, table);
  if (key === undefined) throw new ValidationError('a key is required', { table });
  return { ctx, key: keyOf(ctx.schema, key as Json | readonly Json[], table) };
}

/**
 * A query on one table; immutable (each method returns a new query), so it can be kept and reused.
 * See {@link Table.query}.
 *
 * @example
 * ```ts
 * const open = db.table('projects').query().where('status', '==', 'open').orderBy('created_at', 'desc').limit(20);
 * const rows = await open.toArray();
 * open.observe().subscribe((rows) => render(rows));
 * ```
 */
export class Query<R extends object> {
  /** @internal */
  constructor(
    private readonly core: DbCore,
    private readonly spec: QuerySpec,
  ) {}

  /**
   * Keeps the rows whose `field` compares to `value` with `op`. `==`/`!=`/`in` match `null` like any
   * value; `<`, `<=`, `>`, `>=` never match `null`. Datetimes compare by instant.
   *
   * @example
   * ```ts
   * query.where('status', 'in', ['open', 'review']).where('priority', '>=', 2);
   * ```
   */
  where<F extends keyof R & string>(field: F, op: 'in', values: readonly R[F][]): Query<R>;
  where<F extends keyof R & string>(field: F, op: ComparisonOp, value: R[F]): Query<R>;
  where(field: string, op: ComparisonOp | 'in', value: unknown): Query<R> {
    return new Query(this.core, { ...this.spec, where: [...this.spec.where, { field, op, value }] });
  }

  /**
   * Sorts by `field` (ascending by default). Several calls sort by several keys, the first call first;
   * rows that compare equal keep their order.
   *
   * @example
   * ```ts
   * query.orderBy('status').orderBy('created_at', 'desc');
   * ```
   */
  orderBy(field: keyof R & string, dir: SortDirection = 'asc'): Query<R> {
    if (dir !== 'asc' && dir !== 'desc') {
      throw new ValidationError(`orderBy direction must be 'asc' or 'desc'`, {
        table: this.spec.table,
        field,
      });
    }
    return new Query(this.core, { ...this.spec, orderBy: [...this.spec.orderBy, { field, dir }] });
  }

  /**
   * Returns at most `n` rows.
   *
   * @example
   * ```ts
   * query.limit(10);
   * ```
   */
  limit(n: number): Query<R> {
    return new Query(this.core, { ...this.spec, limit: this.count_(n, 'limit') });
  }

  /**
   * Skips the first `n` rows.
   *
   * @example
   * ```ts
   * query.orderBy('title').offset(20).limit(10); // page 3
   * ```
   */
  offset(n: number): Query<R> {
    return new Query(this.core, { ...this.spec, offset: this.count_(n, 'offset') });
  }

  /**
   * The matching rows (frozen objects; an unchanged row is the same object from one call to the next).
   *
   * @example
   * ```ts
   * const rows = await db.table('projects').query().toArray();
   * ```
   */
  toArray(): Promise<R[]> {
    return this.core.read((layer) => this.run(layer));
  }

  /**
   * The number of matching rows (after `offset`/`limit`).
   *
   * @example
   * ```ts
   * const n = await db.table('projects').query().where('status', '==', 'open').count();
   * ```
   */
  count(): Promise<number> {
    return this.core.read((layer) => this.run(layer).length);
  }

  /**
   * The first matching row, or `undefined`.
   *
   * @example
   * ```ts
   * const newest = await db.table('projects').query().orderBy('created_at', 'desc').first();
   * ```
   */
  first(): Promise<R | undefined> {
    const spec = { ...this.spec, limit: Math.min(this.spec.limit ?? 1, 1) };
    return this.core.read((layer) => runQuery(layer, this.checked(layer, spec))[0] as R | undefined);
  }

  /**
   * A live query: emits the result at once, then after each commit that changes it (once per
   * transaction; rows that did not change keep their object identity, and a commit that leaves the
   * result as it was emits nothing). Reads only committed state.
   *
   * @example
   * ```ts
   * const sub = db.table('projects').query().where('status', '==', 'open').observe().subscribe(setRows);
   * sub.unsubscribe();
   * ```
   */
  observe(): Observable<R[]> {
    const spec = this.spec;
    return this.core.maintain(
      [spec.table],
      (): Maintained<R[]> => {
        const view = this.core.view();
        const result = new LiveResult(view, spec);
        return {
          value: () => {
            this.checked(view, spec);
            result.reset();
            return result.rows() as R[];
          },
          update: (changes) => {
            result.update(changes.get(spec.table));
            return result.rows() as R[];
          },
        };
      },
      sameRows as (a: R[], b: R[]) => boolean,
    );
  }

  /**
   * A live count of the matching rows (after `offset`/`limit`): emits at once, then after each commit
   * that changes it. Maintained from the changed rows, without re-running the query.
   *
   * @example
   * ```ts
   * db.table('projects').query().where('status', '==', 'open').observeCount().subscribe((n) => (badge.textContent = String(n)));
   * ```
   */
  observeCount(): Observable<number> {
    const spec = this.spec;
    return this.core.maintain(
      [spec.table],
      (): Maintained<number> => {
        const view = this.core.view();
        const count = new LiveCount(view, spec);
        return {
          value: () => {
            this.checked(view, spec);
            count.reset();
            return count.value();
          },
          update: (changes) => {
            count.update(changes.get(spec.table));
            return count.value();
          },
        };
      },
      Object.is,
    );
  }

  /**
   * How this query runs: the index it reads (`via: 'index'` with its fields, `'primaryKey'` for a
   * lookup by key, `'scan'` for a scan of the table), how many rows it reads (`touched`) and returns.
   *
   * @example
   * ```ts
   * const { via, index, touched } = await items.query().where('status', '==', 'open').orderBy('priority').limit(50).explain();
   * ```
   */
  explain(): Promise<QueryExplain> {
    return this.core.read((layer) => explainQuery(layer, this.checked(layer, this.spec)).explain);
  }

  private run(layer: ReadLayer): R[] {
    return runQuery(layer, this.checked(layer, this.spec)) as R[];
  }

  private checked(layer: ReadLayer, spec: QuerySpec): QuerySpec {
    if (layer.schemaOf(spec.table) === undefined)
      throw new NotFoundError('unknown table', { table: spec.table });
    return spec;
  }

  private count_(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new ValidationError(`${what} must be a non-negative integer, got ${String(n)}`, {
        table: this.spec.table,
      });
    }
    return n;
  }
}

/**
 * One table of a database. Get it with `db.table(name)`; rows, inserts, updates and keys are typed
 * from the schema.
 *
 * Every write is validated first (zod schema and field codec) and either fully applied or not at all;
 * its promise resolves after the change is durably stored (inside `db.transaction`, at once).
 * Rows returned are frozen.
 *
 * @example
 * ```ts
 * const projects = db.table('projects');
 * await projects.insert({ id: 'p_1', title: 'First', status: 'open', created_at: new Date().toISOString() });
 * await projects.update('p_1', { status: 'closed' });
 * ```
 */
export class Table<T extends TableTypes> {
  /** @internal */
  constructor(
    private readonly core: DbCore,
    /** The table's name. */
    readonly name: string,
  ) {}

  /**
   * Inserts a new row; fields left out get their zod default, or null. Resolves with the stored row.
   * Throws {@link DuplicateKeyError} when the key exists, {@link ValidationError} on bad values,
   * {@link NotFoundError} when the table does not exist.
   *
   * @example
   * ```ts
   * const row = await projects.insert({ id: 'p_2', title: 'Second', status: 'open', created_at: now });
   * ```
   */
  insert(row: T['insert']): Promise<T['row']> {
    return this.core.write((scope) => {
      const ctx = context(this.core, scope.layer, this.name);
      const { row: value, key } = encodeRow(ctx, row);
      if (scope.layer.getRow(this.name, key) !== undefined) {
        throw new DuplicateKeyError('a row with this key already exists', { table: this.name, key });
      }
      scope.apply([{ op: 'add', path: keyedPath.row(this.name, key), value }]);
      return (layer) => layer.getRow(this.name, key) as T['row'];
    });
  }

  /**
   * Inserts the row, or replaces the existing row with the same key (fields left out get their
   * default, or null). Resolves with the stored row.
   *
   * @example
   * ```ts
   * await projects.upsert({ id: 'p_1', title: 'Renamed', status: 'open', created_at: now });
   * ```
   */
  upsert(row: T['insert']): Promise<T['row']> {
    return this.core.write((scope) => {
      const ctx = context(this.core, scope.layer, this.name);
      const { row: value, key } = encodeRow(ctx, row);
      const existing = scope.layer.getRow(this.name, key);
      const path = keyedPath.row(this.name, key);
      if (existing === undefined) scope.apply([{ op: 'add', path, value }]);
      else if (!jsonEqual(existing, value)) scope.apply([{ op: 'replace', path, value }]);
      return (layer) => layer.getRow(this.name, key) as T['row'];
    });
  }

  /**
   * Changes some fields of an existing row (recorded per field, so that concurrent edits of other
   * fields on other devices survive). Resolves with the updated row. Throws {@link NotFoundError}
   * when the row does not exist, {@link ValidationError} on bad values or a changed key field.
   *
   * @example
   * ```ts
   * await projects.update('p_1', { status: 'closed' });
   * await members.update(['team_1', 'u_2'], { role: 'admin' }); // composite key
   * ```
   */
  update(key: T['key'], changes: T['update']): Promise<T['row']> {
    return this.core.write((scope) => {
      const { ctx, key: k } = rowKeyOf(this.core, scope.layer, this.name, key);
      const existing = scope.layer.getRow(this.name, k);
      if (existing === undefined)
        throw new NotFoundError('no row with this key', { table: this.name, key: k });
      const ops: PatchOp[] = [];
      for (const [field, value] of encodeChanges(ctx, k, existing, changes)) {
        const path = keyedPath.cell(this.name, k, field);
        const old = Object.hasOwn(existing, field) ? (existing[field] as Json) : null;
        ops.push({ op: 'test', path, value: old }, { op: 'replace', path, value });
      }
      if (ops.length > 0) scope.apply(ops);
      return (layer) => layer.getRow(this.name, k) as T['row'];
    });
  }

  /**
   * Deletes the row with this key; a missing row is not an error. Resolves with whether a row was deleted.
   *
   * @example
   * ```ts
   * await projects.delete('p_1');
   * ```
   */
  delete(key: T['key']): Promise<boolean> {
    return this.core.write((scope) => {
      const { key: k } = rowKeyOf(this.core, scope.layer, this.name, key);
      const existed = scope.layer.getRow(this.name, k) !== undefined;
      if (existed) scope.apply([{ op: 'remove', path: keyedPath.row(this.name, k) }]);
      return () => existed;
    });
  }

  /**
   * The row with this key, or `undefined`.
   *
   * @example
   * ```ts
   * const p = await projects.get('p_1');
   * ```
   */
  get(key: T['key']): Promise<T['row'] | undefined> {
    return this.core.read((layer) => {
      const { key: k } = rowKeyOf(this.core, layer, this.name, key);
      return layer.getRow(this.name, k) as T['row'] | undefined;
    });
  }

  /**
   * A query on this table (all rows until narrowed with `where`).
   *
   * @example
   * ```ts
   * const open = await projects.query().where('status', '==', 'open').toArray();
   * ```
   */
  query(): Query<T['row']> {
    return new Query(this.core, { table: this.name, where: [], orderBy: [], offset: 0, limit: undefined });
  }

  /**
   * A live view of one row: emits the row (or `undefined`) at once, then each time it changes
   * (by reference: a commit that leaves the row as it was emits nothing).
   *
   * @example
   * ```ts
   * projects.observe('p_1').subscribe((p) => console.log(p?.title));
   * ```
   */
  observe(key: T['key']): Observable<T['row'] | undefined> {
    return this.core.maintain(
      [this.name],
      (): Maintained<T['row'] | undefined> => {
        const view = this.core.view();
        let k: string | undefined;
        const value = (): T['row'] | undefined => {
          k = rowKeyOf(this.core, view, this.name, key).key;
          return view.getRow(this.name, k) as T['row'] | undefined;
        };
        let last: T['row'] | undefined;
        return {
          value: () => {
            last = value();
            return last;
          },
          update: (changes) => {
            const change = changes.get(this.name);
            // a row-level change that does not name this row leaves it as it was
            if (change !== undefined && change !== 'all' && k !== undefined && !change.has(k)) return last;
            last = value();
            return last;
          },
        };
      },
      Object.is,
    );
  }
}

export type { Row };
