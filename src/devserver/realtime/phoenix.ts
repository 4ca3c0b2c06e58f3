/**
 * Phoenix channel frames as realtime-js sends and expects them: vsn 2.0.0 is a JSON
 * array `[join_ref, ref, topic, event, payload]`, vsn 1.0.0 a JSON object.
 *
 * @example
 * ```ts
 * const msg = decodeFrame('["1","1","realtime:x","phx_join",{}]', '2.0.0');
 * ws.send(encodeFrame({ join_ref: '1', ref: '1', topic: 'realtime:x', event: 'phx_reply', payload: {} }, '2.0.0'));
 * ```
 */

/** One Phoenix message. */
export interface PhoenixMessage {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

/** The serializer versions the server speaks. */
export type Vsn = '1.0.0' | '2.0.0';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const refOf = (value: unknown): string | null =>
  typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;

/**
 * Decodes a text frame; `undefined` when it is not a Phoenix message.
 *
 * @example
 * ```ts
 * decodeFrame('garbage', '2.0.0'); // undefined
 * ```
 */
export function decodeFrame(text: string, vsn: Vsn): PhoenixMessage | undefined {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (vsn === '2.0.0') {
    if (!Array.isArray(data) || data.length !== 5) return undefined;
    const [joinRef, ref, topic, event, payload] = data as unknown[];
    if (typeof topic !== 'string' || typeof event !== 'string') return undefined;
    return {
      join_ref: refOf(joinRef),
      ref: refOf(ref),
      topic,
      event,
      payload: isRecord(payload) ? payload : {},
    };
  }
  if (!isRecord(data) || typeof data.topic !== 'string' || typeof data.event !== 'string') return undefined;
  return {
    join_ref: refOf(data.join_ref),
    ref: refOf(data.ref),
    topic: data.topic,
    event: data.event,
    payload: isRecord(data.payload) ? data.payload : {},
  };
}

/**
 * Encodes a message as a text frame.
 *
 * @example
 * ```ts
 * encodeFrame({ join_ref: null, ref: '3', topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} } }, '2.0.0');
 * ```
 */
export function encodeFrame(message: PhoenixMessage, vsn: Vsn): string {
  if (vsn === '2.0.0') {
    return JSON.stringify([message.join_ref, message.ref, message.topic, message.event, message.payload]);
  }
  return JSON.stringify(message);
}

/** A broadcast a client pushed: realtime-js's binary "user broadcast push" (kind 3) or a JSON map. */
export interface UserBroadcast {
  /** The user event name (`channel.send({ event })`). */
  event: string;
  /** `json`: `payload` holds JSON text; `binary`: raw bytes. */
  encoding: 'json' | 'binary';
  payload: Buffer;
}

const USER_BROADCAST_PUSH = 3;
const USER_BROADCAST = 4;

/**
 * Decodes a binary frame of vsn 2.0.0. Only the user broadcast push (kind 3) that
 * realtime-js sends for `channel.send({ type: 'broadcast', ... })` is understood;
 * `undefined` for anything else or a truncated frame.
 *
 * @example
 * ```ts
 * const push = decodeBinaryFrame(data); // { join_ref, ref, topic, broadcast: { event, encoding, payload } }
 * ```
 */
export function decodeBinaryFrame(
  data: Buffer,
): { join_ref: string | null; ref: string | null; topic: string; broadcast: UserBroadcast } | undefined {
  if (data.length < 7 || data[0] !== USER_BROADCAST_PUSH) return undefined;
  const sizes = [data[1], data[2], data[3], data[4], data[5]] as number[];
  const encoding = data[6];
  let offset = 7;
  const parts: string[] = [];
  for (const size of sizes) {
    if (offset + size > data.length) return undefined;
    parts.push(data.subarray(offset, offset + size).toString('utf8'));
    offset += size;
  }
  const [joinRef, ref, topic, event] = parts as [string, string, string, string];
  return {
    join_ref: joinRef === '' ? null : joinRef,
    ref: ref === '' ? null : ref,
    topic,
    broadcast: { event, encoding: encoding === 0 ? 'binary' : 'json', payload: data.subarray(offset) },
  };
}

/**
 * Encodes a broadcast for a vsn 2.0.0 client as Realtime's serializer does: the binary
 * "user broadcast" frame (kind 4: topic, event, metadata JSON, payload encoding, then the
 * payload bytes), which realtime-js decodes to `{ type: 'broadcast', event, payload, meta }`.
 * `undefined` when the topic, event or metadata exceed 255 bytes (Realtime drops those).
 *
 * @example
 * ```ts
 * ws.send(encodeUserBroadcast('realtime:room', { event: 'e', encoding: 'json', payload: Buffer.from('{}') }, { id }));
 * ```
 */
export function encodeUserBroadcast(
  topic: string,
  broadcast: UserBroadcast,
  metadata: Record<string, unknown> | undefined,
): Buffer | undefined {
  const topicBytes = Buffer.from(topic, 'utf8');
  const eventBytes = Buffer.from(broadcast.event, 'utf8');
  const metaBytes = Buffer.from(metadata === undefined ? '' : JSON.stringify(metadata), 'utf8');
  if (topicBytes.length > 255 || eventBytes.length > 255 || metaBytes.length > 255) return undefined;
  const header = Buffer.from([
    USER_BROADCAST,
    topicBytes.length,
    eventBytes.length,
    metaBytes.length,
    broadcast.encoding === 'json' ? 1 : 0,
  ]);
  return Buffer.concat([header, topicBytes, eventBytes, metaBytes, broadcast.payload]);
}
