import { applyCompact, type CompactDoc, parseCompactDoc } from '../../../src/doc/index.js';
import { BadPatchError, ConflictError, NetworkError, type UserDbError } from '../../../src/errors.js';
import type {
  PatchBatch,
  PatchResult,
  Remote,
  RemoteAuthEvent,
  RemoteChange,
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

  get updatedAt(): string {
    return tokenFromMicros(this.micros);
  }

  /** Writes as a foreign client would (bumps the token, pokes subscribers). */
  write(doc: CompactDoc, poke = true): void {
    this.doc = structuredClone(doc);
    this.exists = true;
    this.micros += 1000n;
    if (poke) this.poke();
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

  async pull(since: string | null): Promise<RemoteSnapshot | null> {
    this.#gate('pull');
    this.server.pullCalls += 1;
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
    s.doc = next;
    s.micros += 1000n;
    s.clients.set(batch.clientId, batch.batchSeq);
    const answer = { applied: true, updatedAt: s.updatedAt };
    s.poke();
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
