/**
 * Fault injection for tests: everything is off until a test turns it on.
 *
 * @example
 * ```ts
 * server.faults.dropResponseAfterCommit(1);                   // the next rpc commits, its answer is lost
 * server.faults.dropResponseAfterCommit((c) => c.fn === 'userdb_patch');
 * server.faults.latency(200);                                  // every HTTP request waits 200 ms
 * server.faults.offline(true);                                 // refuse HTTP and websockets
 * server.faults.closeAllSockets();                             // cut every realtime connection
 * server.faults.broadcasts((d) => (d.event === 'change' ? 'drop' : 'deliver')); // lose Broadcasts
 * server.faults.reset();
 * ```
 */

/**
 * An RPC as the fault predicates see it.
 *
 * @example
 * ```ts
 * server.faults.dropResponseAfterCommit((call: RpcCall) => call.fn === 'userdb_patch' && call.sub === userId);
 * ```
 */
export interface RpcCall {
  /** The function name (without schema). */
  fn: string;
  /** The named arguments as sent (query parameters for GET). */
  args: Readonly<Record<string, unknown>>;
  method: string;
  /** The role the call ran as. */
  role: string;
  /** The JWT `sub`, if any. */
  sub: string | undefined;
}

/**
 * Decides, per committed RPC, whether its response is dropped.
 *
 * @example
 * ```ts
 * let left = 2;
 * const twice: RpcPredicate = () => left-- > 0;
 * ```
 */
export type RpcPredicate = (call: RpcCall) => boolean;

/**
 * One Broadcast frame about to be sent to one socket, as {@link BroadcastDecider}s see it.
 *
 * @example
 * ```ts
 * server.faults.broadcasts((d: BroadcastDelivery) => (d.socket % 2 === 0 ? 'drop' : 'deliver'));
 * ```
 */
export interface BroadcastDelivery {
  /** The topic without the `realtime:` prefix, e.g. `userdb:<user id>`. */
  topic: string;
  /** The broadcast's event name. */
  event: string;
  /** Whether it goes to a private channel. */
  private: boolean;
  /** The JWT `sub` of the receiving channel, if any. */
  sub: string | undefined;
  /** The receiving websocket's number (distinct per socket of this server). */
  socket: number;
}

/**
 * What becomes of one Broadcast frame to one socket: `deliver` it, `drop` it, `duplicate` it
 * (sent twice), or `hold` it back and send it right after the next Broadcast frame to the same
 * socket (reordered; a held frame is sent when the faults are reset, lost when the socket closes).
 *
 * @example
 * ```ts
 * const fate: BroadcastFate = 'hold';
 * ```
 */
export type BroadcastFate = 'deliver' | 'drop' | 'duplicate' | 'hold';

/**
 * Decides the fate of every Broadcast frame to every socket while installed.
 *
 * @example
 * ```ts
 * let n = 0;
 * const everyThirdLost: BroadcastDecider = () => (++n % 3 === 0 ? 'drop' : 'deliver');
 * ```
 */
export type BroadcastDecider = (delivery: BroadcastDelivery) => BroadcastFate;

/** The hooks {@link Faults} needs from the server. */
export interface FaultHooks {
  closeAllSockets(): void;
  /** Sends every held Broadcast frame now. */
  releaseHeldBroadcasts(): void;
}

/**
 * The fault switches of a running dev server (`server.faults`).
 *
 * @example
 * ```ts
 * server.faults.offline(true);
 * // … the client retries …
 * server.faults.offline(false);
 * ```
 */
export class Faults {
  readonly #hooks: FaultHooks;
  #dropCount = 0;
  readonly #predicates = new Set<RpcPredicate>();
  #latencyMs = 0;
  #offline = false;
  #dropped = 0;
  readonly #deciders = new Set<BroadcastDecider>();
  readonly #broadcastCounts: Record<Exclude<BroadcastFate, 'deliver'>, number> = {
    drop: 0,
    duplicate: 0,
    hold: 0,
  };

  /** @internal */
  constructor(hooks: FaultHooks) {
    this.#hooks = hooks;
  }

  /**
   * Drops HTTP responses of RPCs whose transaction has committed: the connection is
   * destroyed without an answer, so the client sees a network error although the
   * change is in the database. A number drops that many next RPC responses; a
   * predicate is asked for every committed RPC until the returned function (or
   * {@link Faults.reset}) removes it.
   *
   * @example
   * ```ts
   * const stop = server.faults.dropResponseAfterCommit((call) => call.fn === 'userdb_patch');
   * stop();
   * ```
   */
  dropResponseAfterCommit(match: number | RpcPredicate = 1): () => void {
    if (typeof match === 'number') {
      this.#dropCount += Math.max(0, Math.floor(match));
      return () => {
        this.#dropCount = 0;
      };
    }
    this.#predicates.add(match);
    return () => {
      this.#predicates.delete(match);
    };
  }

  /**
   * Delays every HTTP request by `ms` milliseconds before it is handled (0 turns it off).
   *
   * @example
   * ```ts
   * server.faults.latency(50);
   * ```
   */
  latency(ms: number): void {
    this.#latencyMs = Math.max(0, ms);
  }

  /**
   * Offline: every HTTP request's connection is destroyed unanswered and websocket
   * upgrades are refused; turning it on also closes the open realtime sockets.
   *
   * @example
   * ```ts
   * server.faults.offline(true);
   * ```
   */
  offline(on = true): void {
    this.#offline = on;
    if (on) this.#hooks.closeAllSockets();
  }

  /**
   * Closes every open realtime websocket (clients see an abnormal close and reconnect).
   *
   * @example
   * ```ts
   * server.faults.closeAllSockets();
   * ```
   */
  closeAllSockets(): void {
    this.#hooks.closeAllSockets();
  }

  /**
   * Loses, duplicates or reorders Broadcast frames (from the database and between clients):
   * `decide` is asked for every frame to every socket until the returned function (or
   * {@link Faults.reset}) removes it; the first decider that answers other than `deliver`
   * wins. Removing the last decider sends the held frames.
   *
   * @example
   * ```ts
   * const fates: BroadcastFate[] = ['drop', 'duplicate', 'hold'];
   * const stop = server.faults.broadcasts(() => fates.shift() ?? 'deliver');
   * stop();
   * ```
   */
  broadcasts(decide: BroadcastDecider): () => void {
    this.#deciders.add(decide);
    return () => {
      if (this.#deciders.delete(decide) && this.#deciders.size === 0) this.#hooks.releaseHeldBroadcasts();
    };
  }

  /** How many Broadcast frames were dropped, duplicated and held back so far. */
  get broadcastFaults(): Readonly<Record<Exclude<BroadcastFate, 'deliver'>, number>> {
    return { ...this.#broadcastCounts };
  }

  /**
   * Turns every fault off.
   *
   * @example
   * ```ts
   * afterEach(() => server.faults.reset());
   * ```
   */
  reset(): void {
    this.#dropCount = 0;
    this.#predicates.clear();
    this.#latencyMs = 0;
    this.#offline = false;
    if (this.#deciders.size > 0) {
      this.#deciders.clear();
      this.#hooks.releaseHeldBroadcasts();
    }
  }

  /** How many RPC responses were dropped so far. */
  get droppedResponses(): number {
    return this.#dropped;
  }

  /** @internal Whether the server is refusing connections. */
  get isOffline(): boolean {
    return this.#offline;
  }

  /** @internal The current added latency. */
  get latencyMs(): number {
    return this.#latencyMs;
  }

  /** @internal Called after an RPC committed: whether to drop its response. */
  shouldDrop(call: RpcCall): boolean {
    let drop = false;
    if (this.#dropCount > 0) {
      this.#dropCount--;
      drop = true;
    } else {
      for (const predicate of this.#predicates) {
        if (predicate(call)) {
          drop = true;
          break;
        }
      }
    }
    if (drop) this.#dropped++;
    return drop;
  }

  /** @internal Called for every Broadcast frame to a socket: what becomes of it. */
  broadcastFate(delivery: BroadcastDelivery): BroadcastFate {
    for (const decide of this.#deciders) {
      const fate = decide(delivery);
      if (fate !== 'deliver') {
        this.#broadcastCounts[fate]++;
        return fate;
      }
    }
    return 'deliver';
  }
}
