/** Public entry of the Shardcast client SDK. */
export {
  ShardcastClient,
  type ClientEvents,
  type ClientLogger,
  type ClientOptions,
  type CloseInfo,
  type ConnectionState,
  type DisconnectInfo,
  type ReconnectOptions,
  type TokenSource,
} from './client.js';
export {
  Subscription,
  type CommandOptions,
  type JoinOptions,
  type PresenceChange,
  type RequestOptions,
  type SnapshotInfo,
  type StreamPosition,
  type SubscriptionEnd,
  type SubscriptionEvents,
  type SubscriptionState,
} from './subscription.js';
export { ShardcastError, ClientErrorCode } from './errors.js';
export { backoffDelay, backoffPolicy, backoffCap, DEFAULT_BACKOFF, MIN_FLOOR_MS, MIN_CAP_MS, BACKOFF_GROWTH, type BackoffPolicy } from './backoff.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
export type {
  EventFrame,
  GoAwayFrame,
  HelloFrame,
  JoinedFrame,
  ResyncFrame,
  PresenceEntry,
  SnapshotEntry,
  Value,
} from './wire/frames.js';
export { CloseCode, ErrorCode } from './wire/codes.js';
