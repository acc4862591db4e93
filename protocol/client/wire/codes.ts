/**
 * The error and close codes a client meets, the SDK's own copy of the registries in
 * the daemon's protocol/codes.ts (test/client/wire-parity.test.ts pins them equal).
 *
 * Close-code ranges tell a client what to do without knowing each code:
 *   1000–1999  standard WebSocket codes (1001 = server going away: reconnect, resume)
 *   4000–4499  reconnect with backoff and resume from the last (epoch, seq)
 *   4500–4999  terminal: do not reconnect with the same credentials/input
 */

/** An error code carried in an `error` frame; the connection stays open. */
export const ErrorCode = {
  /** The server failed while handling the request; retry. */
  Internal: 100,
  /** A field is missing, has the wrong msgpack type, or is out of range. */
  BadRequest: 101,
  /** The frame's `t` is not a client frame type of this protocol version. */
  UnknownFrame: 102,
  /** The token's `sessions` claim does not allow this session, or presence is off in its namespace. */
  Forbidden: 103,
  /** The request needs the connection to have joined the session first. */
  NotJoined: 104,
  /** The connection has already joined this session. */
  AlreadyJoined: 105,
  /** Too many frames from this connection or user; retry after backing off. */
  RateLimited: 106,
  /** The connection has joined as many sessions as the server allows. */
  TooManySessions: 107,
  /** This client may not publish into this session: its namespace has no client publish, or not for the token's role. */
  PublishNotAllowed: 108,
  /** The frame's data is bigger or deeper than the server allows. */
  PayloadTooLarge: 109,
  /** A backend the request needs is unavailable; retry later. */
  Unavailable: 110,
  /** The server did not finish the request in time; retry with the same id. */
  Timeout: 111,
  /** The session id is empty, too long or has characters outside [A-Za-z0-9_.:@-]. */
  InvalidSession: 112,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Error codes after which repeating the same request later may succeed. */
export const RETRYABLE_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.Internal,
  ErrorCode.RateLimited,
  ErrorCode.Unavailable,
  ErrorCode.Timeout,
]);

/** A WebSocket close code sent by the server. */
export const CloseCode = {
  /** Normal closure (the client asked, or the server closed an idle session). */
  Normal: 1000,
  /** The server is draining (deploy, scale-down): reconnect after the go-away delay and resume. */
  GoingAway: 1001,
  /** The server failed; reconnect with backoff and resume. */
  InternalError: 4000,
  /** The client read too slowly and its outgoing buffer passed the bound; reconnect and resume. */
  SlowConsumer: 4001,
  /** The client sent frames faster than allowed; reconnect after backing off. */
  RateLimited: 4002,
  /** The server or this user has as many connections as allowed; reconnect after backing off. */
  ConnectionLimit: 4003,
  /** The token expired while connected; reconnect with a fresh token. */
  TokenExpired: 4004,
  /** The client broke the protocol (undecodable or non-binary frame, extension types, too deep); do not reconnect unchanged. */
  ProtocolError: 4500,
  /** The token is missing, malformed, badly signed, unsupported (`alg: none`) or not yet valid. */
  AuthFailed: 4501,
  /** The connection is not allowed (origin not in the allowlist). */
  Forbidden: 4502,
  /** A frame exceeded the maximum frame size. */
  MessageTooBig: 4503,
  /** The client asked for a protocol version this server does not speak. */
  UnsupportedVersion: 4504,
  /** An admin disconnected this connection on purpose. */
  Kicked: 4505,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** True when a client should reconnect (with backoff) after this close code. */
export function closeIsRetryable(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  if (code === CloseCode.Normal) return false;
  return true;
}

/** True when the request that drew this error code may succeed if repeated. */
export function errorIsRetryable(code: number): boolean {
  return RETRYABLE_ERRORS.has(code);
}
