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
