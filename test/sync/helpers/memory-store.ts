import { type CompactDoc, type Json, jsonEqual, type PatchOp } from '../../../src/doc/index.js';
import type {
  CellCheck,
  OwnWrite,
  RewrittenEntry,
  SyncBase,
  SyncLogChange,
  SyncOutboxEntry,
  SyncStore,
} from '../../../src/sync/ports.js';

/** An in-memory SyncStore with the same atomicity (each method is one synchronous step). */
export class MemoryStore implements SyncStore {
  readonly clientId: string;
  base: SyncBase = { doc: { version: 1, tables: {} }, updatedAt: null };
  outbox: SyncOutboxEntry[] = [];
  nextBatchSeq = 1;
  /** Changes appended by pulls by delta and pushes (cleared when a whole base is stored). */
  log: SyncLogChange[] = [];
  /** Whole documents stored (by a pull of the document or a compaction). */
  baseWrites = 0;
  /** Own acknowledged cell writes, oldest first (as the local store keeps them, bounded). */
  own = new Map<string, Json>();
  maxOwnWrites = 10_000;
  #seq = 0;
  readonly #listeners = new Set<(c: { meta: boolean; outbox: boolean }) => void>();

  constructor(clientId = `client-${Math.random().toString(36).slice(2)}`) {
    this.clientId = clientId;
  }

  append(ops: PatchOp[]): number {
    this.#seq += 1;
    this.outbox.push({ seq: this.#seq, ops: structuredClone(ops) });
    this.#notify(false, true);
    return this.#seq;
  }

  async readBase(): Promise<SyncBase> {
    return structuredClone(this.base);
  }

  async readOutbox(options: { maxBytes?: number; upToSeq?: number }): Promise<SyncOutboxEntry[]> {
    if (options.upToSeq !== undefined) {
      const up = options.upToSeq;
      return structuredClone(this.outbox.filter((e) => e.seq <= up));
    }
    const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
    const out: SyncOutboxEntry[] = [];
    let total = 0;
    for (const e of this.outbox) {
      const size = JSON.stringify(e.ops).length;
      if (out.length > 0 && total + size > max) break;
      total += size;
      out.push(structuredClone(e));
    }
    return out;
  }

  async countOutbox(): Promise<number> {
    return this.outbox.length;
  }

  async lastSeq(): Promise<number> {
    return this.outbox[this.outbox.length - 1]?.seq ?? 0;
  }

  async firstSeq(): Promise<number> {
    return this.outbox[0]?.seq ?? 0;
  }

  async getNextBatchSeq(): Promise<number> {
    return this.nextBatchSeq;
  }

  async setNextBatchSeq(next: number): Promise<void> {
    this.nextBatchSeq = next;
    this.#notify(true, false);
  }

  async commitPush(args: {
    newBase: CompactDoc;
    updatedAt: string;
    upToSeq: number;
    ops?: PatchOp[] | undefined;
    ownWrites?: readonly OwnWrite[] | undefined;
  }): Promise<void> {
    for (const w of args.ops === undefined ? [] : (args.ownWrites ?? [])) {
      this.own.delete(w.cell);
      this.own.set(w.cell, structuredClone(w.value));
    }
    while (this.own.size > this.maxOwnWrites) this.own.delete(this.own.keys().next().value as string);
    if (args.ops === undefined) this.baseWrites += 1;
    else {
      this.log.push({
        before: this.base.updatedAt,
        after: args.updatedAt,
        ops: structuredClone(args.ops),
        keyed: null,
        clientId: this.clientId,
        batchSeq: args.upToSeq,
        acked: args.upToSeq,
        exact: true,
      });
    }
    this.base = { doc: structuredClone(args.newBase), updatedAt: args.updatedAt };
    this.outbox = this.outbox.filter((e) => e.seq > args.upToSeq);
    this.#notify(true, true);
  }

  async appendChanges(
    args: {
      changes: SyncLogChange[];
      newBase: CompactDoc;
      updatedAt: string;
      dropUpToSeq?: number | undefined;
      checks?: readonly CellCheck[] | undefined;
      overwritten?: readonly string[] | undefined;
    },
    rewrite: (entries: SyncOutboxEntry[]) => RewrittenEntry[],
  ): Promise<{ overridden: readonly string[] }> {
    const overridden: string[] = [];
    for (const c of args.checks ?? []) {
      const v = this.own.get(c.cell);
      if (v !== undefined && jsonEqual(v, c.expected) && !overridden.includes(c.cell))
        overridden.push(c.cell);
    }
    for (const cell of overridden) this.own.delete(cell);
    for (const name of args.overwritten ?? []) {
      for (const cell of [...this.own.keys()]) {
        if (name === '' || cell === name || (name.endsWith('/') && cell.startsWith(name)))
          this.own.delete(cell);
      }
    }
    let drop = args.dropUpToSeq ?? 0;
    for (const c of args.changes) if (c.acked !== null) drop = Math.max(drop, c.acked);
    const remaining = this.outbox.filter((e) => e.seq > drop);
    const rewritten = rewrite(structuredClone(remaining));
    const bySeq = new Map(rewritten.map((r) => [r.seq, r.ops]));
    this.outbox = remaining
      .map((e) => ({ seq: e.seq, ops: bySeq.get(e.seq) ?? e.ops }))
      .filter((e) => e.ops.length > 0);
    this.log.push(...structuredClone(args.changes));
    this.base = { doc: structuredClone(args.newBase), updatedAt: args.updatedAt };
    this.#notify(true, true);
    return { overridden };
  }

  async compact(options: { force?: boolean }): Promise<void> {
    if (this.log.length === 0 || (options.force !== true && this.log.length < 4)) return;
    this.log = [];
    this.baseWrites += 1;
  }

  async rebase(
    args: { doc: CompactDoc; updatedAt: string; dropUpToSeq?: number | undefined },
    rewrite: (entries: SyncOutboxEntry[]) => RewrittenEntry[],
  ): Promise<void> {
    const drop = args.dropUpToSeq ?? 0;
    const remaining = this.outbox.filter((e) => e.seq > drop);
    const rewritten = rewrite(structuredClone(remaining));
    const bySeq = new Map(rewritten.map((r) => [r.seq, r.ops]));
    this.outbox = remaining
      .map((e) => ({ seq: e.seq, ops: bySeq.get(e.seq) ?? e.ops }))
      .filter((e) => e.ops.length > 0);
    this.base = { doc: structuredClone(args.doc), updatedAt: args.updatedAt };
    this.log = [];
    this.baseWrites += 1;
    this.#notify(true, true);
  }

  /** Entries moved aside by {@link holdEntries}, with why. */
  held: (SyncOutboxEntry & { reason: string })[] = [];

  async holdEntries(items: readonly { seq: number; reason: string }[]): Promise<void> {
    for (const { seq, reason } of items) {
      const entry = this.outbox.find((e) => e.seq === seq);
      if (entry === undefined) continue;
      this.held.push({ ...entry, reason });
      this.outbox = this.outbox.filter((e) => e.seq !== seq);
    }
    this.#notify(false, true);
  }

  onChange(listener: (c: { meta: boolean; outbox: boolean }) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(meta: boolean, outbox: boolean): void {
    queueMicrotask(() => {
      for (const l of [...this.#listeners]) l({ meta, outbox });
    });
  }
}
