/**
 * The slice of the WHATWG WebSocket API the client uses, so that the browser's
 * WebSocket and Node's `ws` package both fit (the SDK imports neither).
 */

/** A `message` event: `data` is an ArrayBuffer for binary frames once binaryType is 'arraybuffer'. */
export interface SocketMessageEvent {
  readonly data: unknown;
}

/** A `close` event. */
export interface SocketCloseEvent {
  readonly code: number;
  readonly reason: string;
}

/** An `error` event; browsers give no detail, `ws` sets `message` and `error`. */
export interface SocketErrorEvent {
  readonly message?: string;
  readonly error?: unknown;
}

/** What the client needs from a WebSocket instance. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: SocketMessageEvent) => void): void;
  addEventListener(type: 'close', listener: (event: SocketCloseEvent) => void): void;
  addEventListener(type: 'error', listener: (event: SocketErrorEvent) => void): void;
}

/** A WHATWG-style WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** readyState of a closed socket. */
export const SOCKET_CLOSED = 3;
