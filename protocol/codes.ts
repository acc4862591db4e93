/**
 * The registries of the protocol: error codes (carried in `error` frames, the
 * connection stays open), close codes (the WebSocket close frame, the connection
 * ends) and the HTTP API's error codes (the `{"error": {"code", "message"}}` body
 * upstreams get). protocol/SPEC.md lists the same codes; test/protocol/codes.test.ts
 * pins every list so none can drift silently.
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
  /** The frame's data is bigger or deeper than the server allows, or the frame holds more msgpack values than it allows. */
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

/**
 * Longest close reason in UTF-8 bytes: a close frame's payload is at most 125 bytes
 * (RFC 6455 §5.5), 2 of them the code.
 */
export const MAX_CLOSE_REASON_BYTES = 123;

const ELLIPSIS = '\u2026';
const ELLIPSIS_BYTES = 3;

/** UTF-8 length of one code point as the WebSocket layer writes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * Fits `text` into a close frame: at most MAX_CLOSE_REASON_BYTES of UTF-8, cut on a
 * character boundary (a byte cut could leave invalid UTF-8, which clients must
 * treat as a protocol failure) and ending with "…" when cut.
 */
export function closeReason(text: string): string {
  // Every UTF-16 unit is at most 3 UTF-8 bytes: short texts need no counting.
  if (text.length * 3 <= MAX_CLOSE_REASON_BYTES) return text;
  let bytes = 0;
  let fitsWithEllipsis = 0;
  let index = 0;
  for (const ch of text) {
    bytes += utf8Length(ch.codePointAt(0)!);
    if (bytes > MAX_CLOSE_REASON_BYTES) return text.slice(0, fitsWithEllipsis) + ELLIPSIS;
    index += ch.length;
    if (bytes <= MAX_CLOSE_REASON_BYTES - ELLIPSIS_BYTES) fitsWithEllipsis = index;
  }
  return text;
}

/**
 * The HTTP API's error codes, carried as `{"error": {"code": "<code>", "message"}}`
 * and the status HTTP_ERRORS gives it: one status per code, so a client matching on
 * the code never sees it with two meanings.
 */
export const HttpErrorCode = {
  /** 400: the body is not valid JSON or msgpack (the message says where it broke). */
  InvalidBody: 'invalid_body',
  /** 400: the request decoded but a field is wrong (the message names the field path) or a query parameter is out of range. */
  InvalidRequest: 'invalid_request',
  /** 401: `Authorization: Bearer <api key>` is missing or wrong. */
  Unauthorized: 'unauthorized',
  /** 404: no such route. */
  NotFound: 'not_found',
  /** 405: the route exists but not for this method (the `Allow` header lists those it takes). */
  MethodNotAllowed: 'method_not_allowed',
  /** 413: the body is larger than the API accepts. */
  TooLarge: 'too_large',
  /** 415: the content-type is neither JSON nor msgpack. */
  UnsupportedMediaType: 'unsupported_media_type',
  /** 503: a backend the request needs is unavailable; retry later (publish with the same event `id`). */
  Unavailable: 'unavailable',
  /** 504: the request did not finish in time and may or may not have taken effect; retry with the same event `id`. */
  Timeout: 'timeout',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** The HTTP statuses the API's errors use. */
export type HttpErrorStatus = 400 | 401 | 404 | 405 | 413 | 415 | 503 | 504;

/** The HTTP status and retry rule of each HTTP API error code. */
export const HTTP_ERRORS: { readonly [C in HttpErrorCode]: { readonly status: HttpErrorStatus; readonly retry: boolean } } = {
  invalid_body: { status: 400, retry: false },
  invalid_request: { status: 400, retry: false },
  unauthorized: { status: 401, retry: false },
  not_found: { status: 404, retry: false },
  method_not_allowed: { status: 405, retry: false },
  too_large: { status: 413, retry: false },
  unsupported_media_type: { status: 415, retry: false },
  unavailable: { status: 503, retry: true },
  timeout: { status: 504, retry: true },
};
