/**
 * {@link applyCompact}: the RFC 6902 subset userdb sends to the server, applied to the compact form.
 *
 * Semantics (the server's `userdb_patch` must match them exactly):
 * - ops: `add`, `remove`, `replace`, `test`; anything else (`move`, `copy`, unknown) is rejected;
 * - paths are RFC 6901 pointers; the root path `''` is rejected (no whole-document ops);
 * - every parent on the path must exist and be an object or array;
 * - array indexes are canonical decimals (`0`, `12`, never `01` or `+1`); `-` means "append" and is
 *   accepted only as the last segment of an `add`;
 * - `add` on an object member creates or replaces it; on an array inserts at `0..length` (or `-`);
 * - `remove` and `replace` need an existing member / an index `< length`;
 * - `test` compares structurally (member order ignored, array order significant);
 * - values must be plain JSON.
 * The first failing op aborts the whole patch with `UserDbError` code `bad_patch` naming its index.
 */
import { UserDbError } from '../errors.js';
import { hasOwn, isPlainObject, jsonEqual, jsonIssue, setOwn } from './json.js';
import { splitPointer } from './pointer.js';
import type { CompactDoc, Json, PatchOp } from './types.js';

type Container = Json[] | { [key: string]: Json };

const INDEX_RE = /^(?:0|[1-9]\d*)$/;

function fail(index: number, op: PatchOp, message: string, cause?: unknown): UserDbError {
  const o = op as { op?: unknown; path?: unknown };
  return new UserDbError('bad_patch', `op ${index} (${String(o.op)} ${String(o.path)}): ${message}`, {
    cause,
  });
}

function isContainer(v: unknown): v is Container {
  return Array.isArray(v) || isPlainObject(v);
}

function arrayIndex(seg: string, length: number, allowEnd: boolean): number | undefined {
  if (!INDEX_RE.test(seg)) return undefined;
  const i = Number(seg);
  return i < length || (allowEnd && i === length) ? i : undefined;
}

function child(parent: Container, seg: string): Json | undefined {
  if (Array.isArray(parent)) {
    const i = arrayIndex(seg, parent.length, false);
    return i === undefined ? undefined : parent[i];
  }
  return hasOwn(parent, seg) ? parent[seg] : undefined;
}

function setChild(parent: Container, seg: string, value: Json): void {
  if (Array.isArray(parent)) parent[Number(seg)] = value;
  else setOwn(parent, seg, value);
}

/**
 * Applies an index-based RFC 6902 patch (the subset above) to a compact document, strictly and
 * immutably: containers on changed paths are copied once per call, everything else is shared.
 * It does not re-validate the document's shape (the compiler only emits shape-preserving patches).
 *
 * @example
 * ```ts
 * const next = applyCompact(doc, [{ op: 'replace', path: '/tables/projects/rows/0/1', value: 'Renamed' }]);
 * ```
 */
export function applyCompact(doc: CompactDoc, ops: readonly PatchOp[]): CompactDoc {
  const owned = new WeakSet<object>();
  let root = doc as unknown as Container;
  const own = <T extends Container>(c: T): T => {
    if (owned.has(c)) return c;
    const copy = (Array.isArray(c) ? c.slice() : { ...c }) as T;
    owned.add(copy);
    return copy;
  };
  ops.forEach((op, index) => {
    if (!isPlainObject(op) || typeof op.path !== 'string')
      throw fail(index, op, 'not a JSON Patch operation');
    const kind = op.op;
    if (kind !== 'add' && kind !== 'remove' && kind !== 'replace' && kind !== 'test') {
      throw fail(index, op, `unsupported op ${JSON.stringify(kind)}`);
    }
    let segs: string[];
    try {
      segs = splitPointer(op.path);
    } catch (e) {
      throw fail(index, op, 'invalid JSON pointer', e);
    }
    if (segs.length === 0) throw fail(index, op, 'the root path is not supported');
    let value: Json = null;
    if (kind !== 'remove') {
      if (!hasOwn(op, 'value')) throw fail(index, op, 'missing "value"');
      value = (op as { value: Json }).value;
      const issue = jsonIssue(value);
      if (issue !== undefined) throw fail(index, op, `value is not JSON: contains ${issue}`);
    }
    const last = segs[segs.length - 1] as string;
    if (kind === 'test') {
      let at: Json | undefined = root as Json;
      for (const seg of segs) {
        at = isContainer(at) ? child(at, seg) : undefined;
        if (at === undefined) throw fail(index, op, 'path not found');
      }
      if (!jsonEqual(at, value)) throw fail(index, op, 'test failed');
      return;
    }
    root = own(root);
    let parent: Container = root;
    for (let s = 0; s < segs.length - 1; s++) {
      const seg = segs[s] as string;
      const next = child(parent, seg);
      if (!isContainer(next)) throw fail(index, op, 'path not found');
      const mine = own(next);
      if (mine !== next) setChild(parent, seg, mine);
      parent = mine;
    }
    if (Array.isArray(parent)) {
      if (kind === 'add') {
        const i = last === '-' ? parent.length : arrayIndex(last, parent.length, true);
        if (i === undefined) throw fail(index, op, 'array index out of range');
        if (i === parent.length) parent.push(value);
        else parent.splice(i, 0, value);
        return;
      }
      const i = arrayIndex(last, parent.length, false);
      if (i === undefined) throw fail(index, op, 'array index out of range');
      if (kind === 'remove') parent.splice(i, 1);
      else parent[i] = value;
      return;
    }
    if (kind !== 'add' && !hasOwn(parent, last)) throw fail(index, op, 'path not found');
    if (kind === 'remove') delete parent[last];
    else setOwn(parent, last, value);
  });
  return root as unknown as CompactDoc;
}
