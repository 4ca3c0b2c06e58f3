import { applyCompact, type CompactDoc, type PatchOp, parseCompactDoc } from '../../../src/doc/index.js';
import { BadPatchError, ConflictError, NetworkError, type UserDbError } from '../../../src/errors.js';
import type {
  PatchBatch,
  PatchResult,
  Remote,
  RemoteAuthEvent,
  RemoteChange,
  RemoteDelta,
  RemotePull,
  RemoteSnapshot,
  RemoteSubscriptionHandlers,
} from '../../../src/remote/index.js';
import { sameToken, tokenFromMicros, tokenMicros } from '../../../src/remote/index.js';

/** An in-memory server with the semantics of userdb_init/pull/patch (dedupe before the token check). */
export class FakeServer {
  doc: CompactDoc = { version: 1, tables: {} };
  micros = 1_767_323_045_000_000n;
  exists = false;
  clients = new Map<string, number>();
  patchCalls = 0;
  pullCalls = 0;
  readonly subscribers = new Set<RemoteSubscriptionHandlers>();
  /** The change log (as the delta migration keeps it); `null` ops for whole-document writes. */
  log: RemoteDelta[] = [];
  /** False: a server without the change log (delta pulls answer documents). */
  deltaSupported = true;
  /** Pokes are Broadcasts of the change log (else `postgres_changes`-like records). */
  broadcast = false;
  /** Decides the fate of each Broadcast (default: delivered at once). */
  onBroadcast: ((delta: RemoteDelta, deliver: () => void) => void) | undefined;
  /** Answers of delta pulls, by kind. */
  readonly answers = { changes: 0, doc: 0, none: 0 };

  get updatedAt(): string {
    return tokenFromMicros(this.micros);
  }

  /** Writes as a foreign client would (bumps the token, pokes subscribers); logged as a reset. */
  write(doc: CompactDoc, poke = true): void {
    const before = this.updatedAt;
    this.doc = structuredClone(doc);
    this.exists = true;
    this.micros += 1000n;
    this.record({ before, after: this.updatedAt, ops: null, clientId: null, batchSeq: null }, poke);
  }

  /** Applies index-based ops as another client's `userdb_patch` would, logging them. */
  writeOps(ops: PatchOp[], poke = true, clientId: string | null = 'other-client', batchSeq = 1): void {
    const before = this.updatedAt;
    this.doc = parseCompactDoc(applyCompact(this.doc, ops));
    this.micros += 1000n;
    this.record({ before, after: this.updatedAt, ops: structuredClone(ops), clientId, batchSeq }, poke);
  }

  /** Drops the log entries older than the last `keep` (retention). */
  prune(keep: number): void {
    this.log = this.log.slice(Math.max(0, this.log.length - keep));
  }

  record(delta: RemoteDelta, poke: boolean): void {
    this.log.push(delta);
    if (!poke) return;
    if (!this.broadcast) {
      this.poke();
      return;
    }
    const sent = structuredClone(delta);
    const change: RemoteChange = { updatedAt: delta.after, snapshot: null, delta: sent };
    const deliver = () => this.poke(change);
    // the hook gets the message as sent (tampering with it leaves the server's log alone)
    if (this.onBroadcast !== undefined) this.onBroadcast(sent, deliver);
    else deliver();
  }

  /** The answer of `userdb_pull(since, delta => true)`. */
  pullDelta(since: string | null): RemotePull | null {
    if (!this.exists) return null;
    const at = since === null ? null : tokenMicros(since);
    if (at !== null && at >= this.micros) {
      this.answers.none += 1;
      return null;
    }
    const i = at === null ? -1 : this.log.findIndex((d) => tokenMicros(d.before) === at);
    const chain = i < 0 ? [] : this.log.slice(i);
    if (
      !this.deltaSupported ||
      chain.length === 0 ||
      chain.some((d) => d.ops === null) ||
      JSON.stringify(chain).length >= JSON.stringify(this.doc).length
    ) {
      this.answers.doc += 1;
      return { kind: 'doc', snapshot: this.snapshot() };
    }
    this.answers.changes += 1;
    return { kind: 'changes', changes: structuredClone(chain), updatedAt: this.updatedAt };
  }

  poke(change?: RemoteChange): void {
    const c = change ?? {
      updatedAt: this.updatedAt,
      snapshot: { doc: structuredClone(this.doc), updatedAt: this.updatedAt },
    };
    for (const s of [...this.subscribers]) s.onChange(c);
  }

  snapshot(): RemoteSnapshot {
    return { doc: structuredClone(this.doc), updatedAt: this.updatedAt };
  }
}

/** Remote over a FakeServer, with switchable faults. */
export class FakeRemote implements Remote {
  readonly server: FakeServer;
  offline = false;
  /** Drop the answer of the next N patches after they were applied. */
  dropPatchResponses = 0;
  /** Fail the next call with this error (before it reaches the server). */
  failNext: UserDbError[] = [];
  /** Called before each patch reaches the server (to interleave foreign writes). */
  beforePatch: ((batch: PatchBatch) => void) | undefined;
  readonly authListeners = new Set<(e: RemoteAuthEvent) => void>();
  readonly calls: string[] = [];

  constructor(server: FakeServer) {
    this.server = server;
  }

  async currentUserId(): Promise<string | null> {
    return 'user-1';
  }

  #gate(fn: string): void {
    this.calls.push(fn);
    if (this.offline) throw new NetworkError(`${fn}: offline`);
    const e = this.failNext.shift();
    if (e !== undefined) throw e;
  }

  async init(): Promise<RemoteSnapshot> {
    this.#gate('init');
    this.server.exists = true;
    return this.server.snapshot();
  }

  pull(since: string | null): Promise<RemoteSnapshot | null>;
  pull(since: string | null, options: { delta: true }): Promise<RemotePull | null>;
  async pull(since: string | null, options?: { delta: true }): Promise<RemoteSnapshot | RemotePull | null> {
    this.#gate('pull');
    this.server.pullCalls += 1;
    if (options?.delta === true) return this.server.pullDelta(since);
    if (!this.server.exists) return null;
    if (since !== null && (tokenMicros(since) ?? 0n) >= this.server.micros) return null;
    return this.server.snapshot();
  }

  async patch(batch: PatchBatch): Promise<PatchResult> {
    this.#gate('patch');
    this.beforePatch?.(batch);
    const s = this.server;
    s.patchCalls += 1;
    const last = s.clients.get(batch.clientId);
    if (last !== undefined && batch.batchSeq <= last) return { applied: false, updatedAt: s.updatedAt };
    if (batch.expectedUpdatedAt === null || !sameToken(batch.expectedUpdatedAt, s.updatedAt)) {
      throw new ConflictError('userdb_patch: conflict', s.updatedAt);
    }
    let next: CompactDoc;
    try {
      next = parseCompactDoc(applyCompact(s.doc, batch.ops));
    } catch (e) {
      throw new BadPatchError(`userdb_patch: ${(e as Error).message}`, { cause: e });
    }
    const before = s.updatedAt;
    s.doc = next;
    s.micros += 1000n;
    s.clients.set(batch.clientId, batch.batchSeq);
    const answer = { applied: true, updatedAt: s.updatedAt };
    s.record(
      {
        before,
        after: s.updatedAt,
        ops: structuredClone(batch.ops),
        clientId: batch.clientId,
        batchSeq: batch.batchSeq,
      },
      true,
    );
    if (this.dropPatchResponses > 0) {
      this.dropPatchResponses -= 1;
      throw new NetworkError('userdb_patch: connection reset');
    }
    return answer;
  }

  subscribe(_userId: string, handlers: RemoteSubscriptionHandlers): () => void {
    this.server.subscribers.add(handlers);
    queueMicrotask(() => handlers.onSubscribed());
    return () => this.server.subscribers.delete(handlers);
  }

  onAuthChange(listener: (event: RemoteAuthEvent) => void): () => void {
    this.authListeners.add(listener);
    return () => this.authListeners.delete(listener);
  }
}
