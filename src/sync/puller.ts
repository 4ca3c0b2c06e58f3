/**
 * One pull (ARCHITECTURE §5). In order of preference:
 * - Broadcast changes that continue the base (their `before` is the base token, their ops known):
 *   applied as they are, no request;
 * - `userdb_pull(since, delta => true)`: the chain of changes after the base, applied and logged
 *   (O(change)), or the whole document when the server's log does not cover it;
 * - the whole document (a Realtime record, `userdb_init()`, or the one-argument `userdb_pull`).
 * A chain is applied with the outbox rebased on it and own changes acknowledged, in one
 * transaction; a whole document replaces the base with the outbox rebased on it.
 */
import { type CompactDoc, type Json, jsonEqual, splitPointer } from '../doc/index.js';
import { getOwn, setOwn } from '../doc/json.js';
import type { Remote, RemoteDelta, RemoteSnapshot } from '../remote/index.js';
import { compareTokens, InvalidChangeError, tokenMicros } from '../remote/index.js';
import { applyChain, type CellTest, cellId, overwrittenBy } from './delta.js';
import type { SyncBase, SyncLogChange, SyncOutboxEntry, SyncStore } from './ports.js';
import { type ConflictHandler, rebaseOutbox, type SyncConflict } from './rebase.js';

/** What a pull needs. */
export interface PullContext {
  store: SyncStore;
  remote: Remote;
  handlers: Readonly<Record<string, ConflictHandler>>;
}

/** What to pull. */
export interface PullRequest {
  /** A document received through Realtime; used instead of a request when newer than the base. */
  snapshot?: RemoteSnapshot | undefined;
  /** Changes received by Broadcast; applied without a request when they continue the base. */
  deltas?: RemoteDelta[] | undefined;
  /** Use `userdb_init()` (the row may not exist yet, or the base has no token). */
  init?: boolean | undefined;
  /** Entries up to this seq were applied by the server already: drop them instead of rebasing. */
  dropUpToSeq?: number | undefined;
  /** Take the server's document even when its token is not newer (the server went back in time). */
  force?: boolean | undefined;
}

/** What {@link pullOnce} did. */
export interface PullOutcome {
  /** The new base token, or `null` when the base did not change. */
  updatedAt: string | null;
  conflicts: SyncConflict[];
  /** How the base moved: by a chain of changes, by a whole document, or not at all. */
  via: 'changes' | 'document' | 'none';
  /**
   * Cells this device wrote (and the store remembered) that foreign changes of the chain
   * overwrote while declaring (by a `test` op) that they overrode that value: the writer's rebase
   * kept its edit over a concurrent one. Each is returned once: the store forgets it with the change.
   */
  overridden: CellTest[];
}

const NOTHING: PullOutcome = { updatedAt: null, conflicts: [], via: 'none', overridden: [] };

/**
 * Pulls once and stores the result. Throws the typed errors of {@link Remote} (an invalid server
 * document is an `InvalidRemoteDocumentError`; an invalid chain of changes falls back to the
 * document first).
 *
 * @example
 * ```ts
 * const { updatedAt, conflicts } = await pullOnce({ store, remote, handlers: {} }, {});
 * ```
 */
export async function pullOnce(ctx: PullContext, request: PullRequest): Promise<PullOutcome> {
  const { store, remote } = ctx;
  const base = await store.readBase();
  const plain = request.init !== true && request.force !== true && request.dropUpToSeq === undefined;
  if (plain && request.deltas !== undefined && base.updatedAt !== null) {
    const chain = chainFrom(base.updatedAt, request.deltas);
    if (chain === 'current') return NOTHING;
    if (chain !== null) {
      try {
        return await storeChain(ctx, base, chain.changes, chain.updatedAt, undefined);
      } catch (e) {
        if (!(e instanceof InvalidChangeError)) throw e;
        // a Broadcast that does not apply: ask the server instead
      }
    }
  }
  let snapshot: RemoteSnapshot | null = null;
  const candidate = request.snapshot;
  if (
    candidate !== undefined &&
    (base.updatedAt === null || compareTokens(candidate.updatedAt, base.updatedAt) > 0)
  ) {
    snapshot = candidate;
  } else if (candidate === undefined || !plain) {
    if (request.init === true || base.updatedAt === null) snapshot = await remote.init();
    else if (request.force === true) snapshot = await remote.pull(null);
    else {
      let answer: Awaited<ReturnType<typeof remote.pull>> | 'invalid';
      try {
        answer = await remote.pull(base.updatedAt, { delta: true });
      } catch (e) {
        if (!(e instanceof InvalidChangeError)) throw e;
        answer = 'invalid';
      }
      if (answer !== 'invalid' && answer !== null && answer.kind === 'changes') {
        try {
          return await storeChain(ctx, base, answer.changes, answer.updatedAt, request.dropUpToSeq);
        } catch (e) {
          if (!(e instanceof InvalidChangeError)) throw e;
          answer = 'invalid';
        }
      }
      if (answer === 'invalid') {
        // a chain that is malformed or does not apply: the whole document instead
        snapshot = await remote.pull(request.dropUpToSeq !== undefined ? null : base.updatedAt);
      } else if (answer !== null) {
        snapshot = answer.snapshot;
      } else if (request.dropUpToSeq !== undefined) {
        snapshot = await remote.pull(null);
      }
    }
  }
  if (snapshot === null) return NOTHING;
  if (
    base.updatedAt !== null &&
    request.dropUpToSeq === undefined &&
    request.force !== true &&
    compareTokens(snapshot.updatedAt, base.updatedAt) <= 0
  ) {
    return NOTHING; // not newer than what we have
  }
  let conflicts: SyncConflict[] = [];
  const doc = snapshot.doc;
  await store.rebase({ doc, updatedAt: snapshot.updatedAt, dropUpToSeq: request.dropUpToSeq }, (entries) => {
    const result = rebaseOutbox(doc, entries, ctx.handlers, base.doc);
    conflicts = result.conflicts;
    return result.entries;
  });
  return { updatedAt: snapshot.updatedAt, conflicts, via: 'document', overridden: [] };
}

/**
 * The Broadcast changes that lead from `token` to the newest one received, in order; `'current'`
 * when none is newer than `token`; `null` when there is a gap or a change without ops (then pull).
 * Duplicates and changes older than `token` are ignored.
 */
export function chainFrom(
  token: string,
  deltas: readonly RemoteDelta[],
): { changes: RemoteDelta[]; updatedAt: string } | 'current' | null {
  let latest = tokenMicros(token);
  if (latest === null) return null;
  const start = latest;
  const byBefore = new Map<bigint, RemoteDelta>();
  for (const d of deltas) {
    const before = tokenMicros(d.before);
    const after = tokenMicros(d.after);
    if (before === null || after === null || after <= before) continue;
    if (after > latest) latest = after;
    const known = byBefore.get(before);
    if (known === undefined || (known.ops === null && d.ops !== null)) byBefore.set(before, d);
  }
  if (latest === start) return 'current';
  const changes: RemoteDelta[] = [];
  let at = start;
  while (at < latest) {
    const d = byBefore.get(at);
    if (d === undefined || d.ops === null) return null;
    changes.push(d);
    at = tokenMicros(d.after) as bigint;
  }
  const last = changes[changes.length - 1] as RemoteDelta;
  return { changes, updatedAt: last.after };
}

/**
 * Applies a chain on the base and stores it in one transaction: own changes acknowledge their
 * outbox entries, foreign ones are logged with their keyed form, and the remaining outbox is
 * rebased on the new base (only the tables it touches are read).
 */
async function storeChain(
  ctx: PullContext,
  base: SyncBase,
  changes: readonly RemoteDelta[],
  updatedAt: string,
  dropUpToSeq: number | undefined,
): Promise<PullOutcome> {
  const { store } = ctx;
  const { doc, applied } = applyChain(base.doc, changes);
  const logged: SyncLogChange[] = [];
  // foreign writes that declared the value they overrode, and what foreign changes overwrote
  const declared = new Map<string, CellTest>();
  const overwritten = new Set<string>();
  let foreign = false;
  for (const a of applied) {
    const own = a.clientId !== null && a.clientId === store.clientId && a.batchSeq !== null;
    if (!own) {
      for (const t of a.tests) {
        if (t.written !== undefined && !jsonEqual(t.written, t.expected)) {
          declared.set(cellId(t.table, t.key, t.field), t);
        }
      }
      for (const name of overwrittenBy(a.keyed)) overwritten.add(name);
    }
    logged.push({
      before: a.before,
      after: a.after,
      ops: a.ops,
      // an own change first in line is exactly our outbox compiled on our base: views keep their
      // state; after foreign changes it is not (views rebuild)
      keyed: own ? null : a.keyed,
      clientId: a.clientId,
      batchSeq: a.batchSeq,
      acked: own ? a.batchSeq : null,
      exact: own && !foreign,
    });
    if (!own) foreign = true;
  }
  let conflicts: SyncConflict[] = [];
  const checks = [...declared].map(([cell, t]) => ({ cell, expected: t.expected }));
  const stored = await store.appendChanges(
    {
      changes: logged,
      newBase: doc,
      updatedAt,
      dropUpToSeq,
      checks: checks.length > 0 ? checks : undefined,
      overwritten: overwritten.size > 0 ? [...overwritten] : undefined,
    },
    (entries) => {
      if (!foreign || entries.length === 0) return [];
      const result = rebaseOutbox(tablesOf(doc, entries), entries, ctx.handlers);
      conflicts = result.conflicts;
      const changed = result.entries.filter(
        (r, i) => !jsonEqual(r.ops as Json, (entries[i]?.ops ?? []) as Json),
      );
      return changed;
    },
  );
  // cells this device wrote (remembered by the store) that those writes overrode
  const overridden = stored.overridden.flatMap((cell) => declared.get(cell) ?? []);
  return { updatedAt, conflicts, via: 'changes', overridden };
}

/** The part of `doc` the entries touch (rebase reads nothing else). */
function tablesOf(doc: CompactDoc, entries: readonly SyncOutboxEntry[]): CompactDoc {
  const tables: CompactDoc['tables'] = {};
  for (const e of entries) {
    for (const op of e.ops) {
      let name: string | undefined;
      try {
        name = splitPointer(op.path)[1];
      } catch {
        continue;
      }
      const table = name === undefined ? undefined : getOwn(doc.tables, name);
      if (name !== undefined && table !== undefined) setOwn(tables, name, table);
    }
  }
  return { ...doc, tables };
}
