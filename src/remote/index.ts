/**
 * The server side of userdb as seen by the sync engine. The only module that imports supabase-js.
 */
export { mapRpcError, type RpcFailure, toNetworkError } from './map-error.js';
export type {
  PatchBatch,
  PatchResult,
  Remote,
  RemoteAuthEvent,
  RemoteChange,
  RemoteDelta,
  RemotePull,
  RemoteSnapshot,
  RemoteSubscriptionHandlers,
} from './remote.js';
export { InvalidChangeError, parseRemoteDoc } from './schemas.js';
export {
  parsePullAnswer,
  type SupabaseClient,
  SupabaseRemote,
  type SupabaseRemoteOptions,
  toBroadcastChange,
  toRemoteChange,
} from './supabase-remote.js';
export { compareTokens, normalizeToken, sameToken, tokenFromMicros, tokenMicros } from './token.js';
