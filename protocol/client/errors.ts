/**
 * The one error type the client SDK rejects and emits with. Its `code` is the
 * server's code when the server gave one (an `ErrorCode` from an `error` frame, or
 * the WebSocket close code of a terminal close), otherwise one of the SDK's own
 * string codes below.
 */

/** Codes for failures the SDK detects itself (no server code exists for them). */
export const ClientErrorCode = {
  /** No reply came within the request's timeout. Retrying (same cid) is safe. */
  Timeout: 'timeout',
  /** The connection dropped after a non-idempotent request (pub) was sent: its outcome is unknown. */
  Disconnected: 'disconnected',
  /** The client was closed (by `close()` or a terminal close code) before the request finished. */
  Closed: 'closed',
  /** The subscription was left before the request finished. */
  Left: 'left',
  /** The API was used wrongly (e.g. joining a session twice, using a closed client). */
  InvalidUse: 'invalid_use',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error from the server (numeric code) or from the SDK itself (string code). */
export class ShardcastError extends Error {
  /** Server error code (`ErrorCode`), terminal close code (`CloseCode`), or a `ClientErrorCode`. */
  readonly code: number | ClientErrorCode;
  /** True when repeating the same request later may succeed. */
  readonly retryable: boolean;
  /** For a failed command: its cid, to retry it with (the server applies a cid once). */
  readonly cid?: string;
  /** Milliseconds the server asked to wait before retrying (a command limit's 106). */
  readonly retryAfterMs?: number;

  constructor(code: number | ClientErrorCode, message: string, retryable: boolean, cid?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'ShardcastError';
    this.code = code;
    this.retryable = retryable;
    if (cid !== undefined) this.cid = cid;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }

  /** A copy of this error carrying a command's cid. */
  withCid(cid: string): ShardcastError {
    const copy = new ShardcastError(this.code, this.message, this.retryable, cid, this.retryAfterMs);
    copy.stack = this.stack;
    return copy;
  }
}
