/**
 * ShardcastClient: the TypeScript client SDK for the shardcast.v1 protocol, for
 * browsers and Node (pass `ws`'s WebSocket there). One client holds one WebSocket
 * and any number of subscriptions (joined sessions).
 *
 * What it guarantees:
 * - Reconnects after retryable close codes: the first attempt within a few hundred
 *   ms, later ones with a jittered delay that grows only while attempts keep failing
 *   (backoff.ts; reset once a connection said `hello` and its joins succeeded); in a
 *   browser that reports itself offline it waits for the `online` event instead of
 *   counting failures. After a go-away no sooner than the server's delay. Rejoins
 *   every subscription from its last (epoch, seq) so the server replays what was
 *   missed; subscriptions drop anything already delivered.
 * - Notices a dead link within pingIntervalMs + 5 s: it pings on that interval and
 *   drops a connection from which nothing came back within 5 s of a ping.
 * - A listener that throws is reported (logger.error/warn, else console.error, and
 *   the 'error' event) and never stops delivery to the other listeners.
 * - Stops on terminal close codes (4500–4999, 1000, and 4004 with a fixed token) and
 *   reports them through 'error' and 'closed'.
 * - Commands are resent with the same cid after a reconnect until their timeout, so
 *   an answer is applied once even when the connection drops mid-request.
 * - After close() no timer or socket is left: a Node process can exit.
 */
import { decode, encodeClientFrame } from './wire/codec.js';
import { CloseCode, ErrorCode, closeIsRetryable, errorIsRetryable } from './wire/codes.js';
import {
  SESSION_ID_PATTERN,
  SUBPROTOCOL,
  type ClientFrame,
  type ErrorFrame,
  type GoAwayFrame,
  type HelloFrame,
  type PresenceEntry,
  type ServerFrame,
  type Value,
} from './wire/frames.js';
import { backoffDelay, backoffPolicy, type BackoffPolicy } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClientErrorCode, ShardcastError } from './errors.js';
import { parseServerFrame } from './server-frame.js';
import {
  Subscription,
  type CommandOptions,
  type JoinOptions,
  type RequestOptions,
  type SubscriptionHost,
} from './subscription.js';
import { SOCKET_CLOSED, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

/** A token, or a function called before every connection attempt to get a fresh one. */
export type TokenSource = string | (() => string | Promise<string>);

/** Reconnect policy (see backoff.ts); floors and caps below the minimums are raised to them. */
export interface ReconnectOptions {
  /** Reconnect after retryable closes (default true). */
  enabled?: boolean;
  /** Shortest delay of any attempt in ms (default 100, at least 50). */
  minMs?: number;
  /** Cap of the delays in ms while failing for under 2 · baseMs (default 300); later the cap is half the time since the connection was lost. */
  baseMs?: number;
  /** Largest delay cap in ms (default 10000, at least 1000). */
  maxMs?: number;
}

/** Structured logger; pino's `logger.debug(obj, msg)` fits as is. */
export interface ClientLogger {
  debug?(fields: object, msg: string): void;
  warn?(fields: object, msg: string): void;
  error?(fields: object, msg: string): void;
}

/** Connection state: `idle` before connect(), `connecting` during an attempt, `open` after `hello`, `reconnecting` while waiting to retry, `closed` for good. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of `new ShardcastClient()`. */
export interface ClientOptions {
  /** WebSocket endpoint, e.g. `ws://127.0.0.1:8080/v1/ws`; in a page a relative URL (`/v1/ws`) or an http(s) URL resolves against the page's location. */
  url: string;
  /** JWT; sent in the `Sec-WebSocket-Protocol` header as `bearer.<token>` (see `tokenTransport`). */
  token?: TokenSource;
  /**
   * How the token travels: `protocol` (default) offers it as the subprotocol
   * `bearer.<token>` next to `shardcast.v1`, which keeps it out of URLs and so out of
   * browser and proxy logs; `query` sends `?token=` (servers before protocol tokens).
   * A token with characters a subprotocol cannot hold goes in the query either way.
   */
  tokenTransport?: 'protocol' | 'query';
  /** User id for servers in dev mode (sent as the `user` query parameter). */
  user?: string;
  /** WebSocket constructor (default `globalThis.WebSocket`; in Node pass `WebSocket` from `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect policy. */
  reconnect?: ReconnectOptions;
  /** Default timeout of publish/command/presence/leave requests in ms (default 10000). */
  commandTimeoutMs?: number;
  /** Longest wait for a socket to open and say `hello`, in ms, before the attempt counts as failed (default 10000). */
  connectTimeoutMs?: number;
  /** Interval of `ping` frames in ms (default 10000, at least 1000, at most half the server's idle timeout); a connection that answers nothing within 5 s of a ping is dropped. */
  pingIntervalMs?: number;
  /** Called on every state change. */
  onStateChange?: (state: ConnectionState, previous: ConnectionState) => void;
  /** Where the client logs connection changes, ignored frames and listener exceptions (default: listener exceptions go to console.error). */
  logger?: ClientLogger;
}

/** Payload of the 'disconnected' event: the connection was lost and will be retried. */
export interface DisconnectInfo {
  /** Close code (1006 when the socket failed without a close frame or the client gave up on it). */
  code: number;
  reason: string;
  /** Transport error text, when the WebSocket reported one (e.g. `Unexpected server response: 401` from `ws`). */
  error?: string;
  /** Delay before the next attempt. */
  reconnectInMs: number;
}

/** Payload of the 'closed' event: the client is closed for good. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** True when close() was called; false for a terminal close by the server or a fatal setup error. */
  byClient: boolean;
}

/** Events a ShardcastClient emits. */
export interface ClientEvents {
  /** State changed. */
  state: { state: ConnectionState; previous: ConnectionState };
  /** A connection is up (`hello` received); subscriptions are being rejoined. */
  connected: HelloFrame;
  /** The connection was lost; a reconnect is scheduled. */
  disconnected: DisconnectInfo;
  /** The server is draining; the client reconnects after `delay` once the server closes. */
  goaway: GoAwayFrame;
  /** The client is closed for good (close(), terminal close code, or fatal setup error). */
  closed: CloseInfo;
  /** A terminal close, a server `error` frame not tied to a request, or a throwing listener. */
  error: ShardcastError;
}

type Timer = ReturnType<typeof setTimeout>;

/** Outcome handed to a pending request: a reply frame, `null` when its connection dropped, or an error. */
type Outcome = ServerFrame | null | ShardcastError;

/** A request waiting to be sent (id null) or waiting for its reply. */
interface Pending {
  /** The subscription the request needs joined, or null for requests that need only a connection. */
  readonly sub: Subscription | null;
  readonly build: (id: number) => ClientFrame;
  /** What a dropped connection means after the request was sent. */
  readonly onDrop: 'resend' | 'reject' | 'settle';
  readonly settle: (outcome: Outcome) => void;
  id: number | null;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const CLOSE_WAIT_MS = 2_000;
const PONG_TIMEOUT_MS = 5_000;
const DEFAULT_PING_INTERVAL_MS = 10_000;
const MIN_PING_INTERVAL_MS = 1_000;
/** Clock samples kept; the offset comes from the one with the lowest round trip. */
const CLOCK_SAMPLES = 8;
const MAX_REQUEST_ID = 0xffff_ffff;
/** Characters a token may have to travel as a subprotocol (RFC 7230 tchar minus a few; JWTs fit). */
const PROTOCOL_TOKEN = /^[A-Za-z0-9._~+-]+$/;
/** Prefix of the subprotocol carrying the token (SPEC §3). */
const BEARER_PREFIX = 'bearer.';

/** Browser window events the client follows (absent in Node). */
interface NetworkEvents {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

/** The page's window when it reports network changes, else null (Node, workers without navigator.onLine). */
function browserNetwork(): { events: NetworkEvents; isOnline: () => boolean } | null {
  const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown; navigator?: { onLine?: unknown } };
  if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return null;
  if (typeof g.navigator?.onLine !== 'boolean') return null;
  const nav = g.navigator as { onLine: boolean };
  return { events: g as NetworkEvents, isOnline: () => nav.onLine };
}

/** `url` resolved against the page (relative and http(s) URLs become ws(s) URLs). */
export function resolveUrl(url: string, base: string | undefined): URL {
  const resolved = base === undefined ? new URL(url) : new URL(url, base);
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  return resolved;
}

const closeCodeNames = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]));
const errorCodeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** Error for an `error` frame: `Forbidden (103): …`. */
function errorFromFrame(frame: ErrorFrame): ShardcastError {
  const name = errorCodeNames.get(frame.code) ?? 'Error';
  return new ShardcastError(frame.code, `${name} (${frame.code}): ${frame.msg}`, errorIsRetryable(frame.code), undefined, typeof frame.after === 'number' ? frame.after : undefined);
}

/** Error for a reply that is neither the expected frame nor an error frame. */
function unexpectedReply(frame: Outcome, expected: string): ShardcastError {
  if (frame instanceof ShardcastError) return frame;
  if (frame?.t === 'error') return errorFromFrame(frame);
  return new ShardcastError(ErrorCode.Internal, `expected a '${expected}' reply, got ${frame ? `'${frame.t}'` : 'none'}`, true);
}

function randomCid(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  let out = '';
  for (let i = 0; i < 32; i++) out += Math.floor(Math.random() * 16).toString(16);
  return out;
}

function describeTransportError(event: { message?: string; error?: unknown }): string {
  if (typeof event.message === 'string' && event.message !== '') return event.message;
  if (event.error instanceof Error) return event.error.message;
  return 'WebSocket error';
}

/** A connection to a Shardcast gateway. */
export class ShardcastClient extends Emitter<ClientEvents> {
  readonly #url: string;
  readonly #token: TokenSource | undefined;
  readonly #user: string | undefined;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #reconnectEnabled: boolean;
  readonly #backoff: BackoffPolicy;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #tokenTransport: 'protocol' | 'query';
  readonly #onStateChange: ClientOptions['onStateChange'];
  readonly #logger: ClientLogger | null;
  readonly #network = browserNetwork();
  readonly #onOnline = (): void => this.#networkChanged(true);
  readonly #onOffline = (): void => this.#networkChanged(false);
  #networkWatched = false;

  #state: ConnectionState = 'idle';
  #socket: WebSocketLike | null = null;
  #hello: HelloFrame | null = null;
  /** Bumped by every attempt so a token function that resolves late cannot revive a stale attempt. */
  #attemptSeq = 0;
  /** When the connection was lost and attempts began failing (null once a connection and its joins succeeded); drives the backoff. */
  #failingSince: number | null = null;
  #lastTransportError: string | undefined;
  /** Set by `goaway`: no reconnect before this time (ms since epoch). */
  #goAwayUntil = 0;
  #lastId = 0;
  /** Set by `goaway`: new requests wait for the next connection (SPEC §14.4). */
  #draining = false;

  #reconnectTimer: Timer | null = null;
  #helloTimer: Timer | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  /** Armed when a ping is sent; any frame from the server disarms it. */
  #pongTimer: Timer | null = null;
  /** How long a ping may go unanswered on the current connection. */
  #pongTimeoutMs = PONG_TIMEOUT_MS;
  /** Send times of the pings in flight, by request id (for the clock offset). */
  readonly #pingsSent = new Map<number, number>();
  /** Recent clock samples: round trip and offset, newest last. */
  #clockSamples: { rtt: number; offset: number }[] = [];
  /** Join retries; all cleared on close. */
  readonly #timers = new Set<Timer>();

  readonly #subs = new Map<string, Subscription>();
  readonly #joinIds = new Map<number, Subscription>();
  /** When each subscription's join was first refused (retryable refusals); drives its retry delay. */
  readonly #joinFailures = new Map<Subscription, number>();
  readonly #pending = new Set<Pending>();
  readonly #inflight = new Map<number, Pending>();
  #connectWaiters: { resolve: (hello: HelloFrame) => void; reject: (err: ShardcastError) => void }[] = [];
  readonly #host: SubscriptionHost;

  constructor(options: ClientOptions) {
    super();
    this.#url = options.url;
    this.#token = options.token;
    this.#user = options.user;
    this.#WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.#reconnectEnabled = options.reconnect?.enabled ?? true;
    this.#backoff = backoffPolicy(options.reconnect);
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pingIntervalMs = Math.max(MIN_PING_INTERVAL_MS, options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
    this.#tokenTransport = options.tokenTransport ?? 'protocol';
    this.#onStateChange = options.onStateChange;
    this.#logger = options.logger ?? null;
    this.onListenerError = (err) => this.#reportListenerError(err);
    this.#host = {
      publish: (sub, type, data, opts) => this.#publish(sub, type, data, opts),
      command: (sub, type, data, opts) => this.#command(sub, type, data, opts),
      presence: (sub, opts) => this.#presence(sub, opts),
      leave: (sub) => this.#leave(sub),
      reportListenerError: (err) => this.#reportListenerError(err),
    };
  }

  /** Current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The `hello` of the current connection (connection id, user, ping interval), or null when not connected. */
  get hello(): HelloFrame | null {
    return this.#hello;
  }

  /**
   * Milliseconds to add to Date.now() to get the server's clock, estimated from
   * ping/pong round trips (`now + rtt/2 − receive time` of the recent sample with the
   * lowest round trip); null before the first pong that carried the server's time.
   */
  serverTimeOffset(): number | null {
    let best: { rtt: number; offset: number } | null = null;
    for (const sample of this.#clockSamples) if (best === null || sample.rtt < best.rtt) best = sample;
    return best === null ? null : best.offset;
  }

  /** Connects (if not already) and resolves with the `hello` frame; rejects if the client closes before one arrives. Retries per the reconnect policy meanwhile. */
  connect(): Promise<HelloFrame> {
    if (this.#state === 'closed') {
      return Promise.reject(new ShardcastError(ClientErrorCode.InvalidUse, 'client is closed; create a new ShardcastClient', false));
    }
    if (this.#state === 'open' && this.#hello) return Promise.resolve(this.#hello);
    const promise = new Promise<HelloFrame>((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    if (this.#state === 'idle') void this.#open();
    return promise;
  }

  /** Joins a session (sent once connected; starts connecting if idle). Throws if the session id is malformed or already joined through this client. */
  join(session: string, options: JoinOptions = {}): Subscription {
    if (this.#state === 'closed') {
      throw new ShardcastError(ClientErrorCode.InvalidUse, 'client is closed; create a new ShardcastClient', false);
    }
    if (!SESSION_ID_PATTERN.test(session)) {
      throw new ShardcastError(ClientErrorCode.InvalidUse, `invalid session id ${JSON.stringify(session)}: use 1+ characters from [A-Za-z0-9_.:@-]`, false);
    }
    if (this.#subs.has(session)) {
      throw new ShardcastError(ClientErrorCode.InvalidUse, `session ${session} is already joined; use getSubscription() or leave() it first`, false);
    }
    const sub = new Subscription(this.#host, session, options);
    this.#subs.set(session, sub);
    if (this.#state === 'open') this.#sendJoin(sub);
    else if (this.#state === 'idle') this.connect().catch(() => {}); // failures surface via events and sub.ready
    return sub;
  }

  /** The live subscription to a session, if any. */
  getSubscription(session: string): Subscription | undefined {
    return this.#subs.get(session);
  }

  /** Closes the client for good: ends subscriptions, rejects pending requests, clears every timer. Resolves when the socket has closed. */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    const socket = this.#socket;
    this.#shutdown(
      new ShardcastError(ClientErrorCode.Closed, 'client closed', false),
      'closed',
      { code: CloseCode.Normal, reason: 'client closed', byClient: true },
    );
    if (!socket || socket.readyState === SOCKET_CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const fallback = setTimeout(() => {
        (socket as { terminate?: () => void }).terminate?.();
        resolve();
      }, CLOSE_WAIT_MS);
      // Never hold a Node process open just to finish a close handshake.
      (fallback as { unref?: () => void }).unref?.();
      socket.addEventListener('close', () => {
        clearTimeout(fallback);
        resolve();
      });
      try {
        socket.close(CloseCode.Normal, 'client closed');
      } catch {
        clearTimeout(fallback);
        resolve();
      }
    });
  }

  // ------------------------------------------------------------------ connection

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    try {
      this.#onStateChange?.(state, previous);
    } catch (err) {
      this.#reportListenerError(err);
    }
    this.emit('state', { state, previous });
  }

  async #open(): Promise<void> {
    this.#reconnectTimer = null;
    this.#setState('connecting');
    this.#watchNetwork();
    const attempt = ++this.#attemptSeq;
    const Ctor = this.#WebSocket;
    if (!Ctor) {
      this.#fatal('no WebSocket implementation: pass the `WebSocket` option (in Node: `import { WebSocket } from "ws"`)');
      return;
    }
    let token: string | undefined;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (err) {
      if (attempt !== this.#attemptSeq || this.#state === 'closed') return;
      this.#lastTransportError = `token function failed: ${err instanceof Error ? err.message : String(err)}`;
      this.#connectionLost(1006, '');
      return;
    }
    if (attempt !== this.#attemptSeq || this.#state === 'closed') return;

    let socket: WebSocketLike;
    try {
      const { url, protocols } = this.#target(token);
      socket = new Ctor(url, protocols);
    } catch (err) {
      this.#fatal(`cannot open ${this.#url}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    this.#lastTransportError = undefined;
    socket.addEventListener('message', (event) => {
      if (socket === this.#socket) this.#onMessage(event.data);
    });
    socket.addEventListener('error', (event) => {
      if (socket === this.#socket) this.#lastTransportError = describeTransportError(event);
    });
    socket.addEventListener('close', (event) => {
      if (socket === this.#socket) this.#connectionLost(event.code, event.reason);
    });
    this.#helloTimer = setTimeout(() => this.#abandon(socket, `no hello within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
  }

  /** URL and subprotocols of a connection attempt: the token as `bearer.<token>` when it can travel there, else in the query. */
  #target(token: string | undefined): { url: string; protocols: string[] } {
    const location = (globalThis as { location?: { href?: unknown } }).location;
    const url = resolveUrl(this.#url, typeof location?.href === 'string' ? location.href : undefined);
    const protocols = [SUBPROTOCOL];
    if (token !== undefined && token !== '') {
      if (this.#tokenTransport === 'protocol' && PROTOCOL_TOKEN.test(token)) protocols.push(BEARER_PREFIX + token);
      else url.searchParams.set('token', token);
    }
    if (this.#user !== undefined) url.searchParams.set('user', this.#user);
    return { url: url.toString(), protocols };
  }

  /** Follows the browser's online/offline events while the client lives (no-op in Node). */
  #watchNetwork(): void {
    if (this.#networkWatched || this.#network === null) return;
    this.#networkWatched = true;
    this.#network.events.addEventListener('online', this.#onOnline);
    this.#network.events.addEventListener('offline', this.#onOffline);
  }

  #unwatchNetwork(): void {
    if (!this.#networkWatched || this.#network === null) return;
    this.#networkWatched = false;
    this.#network.events.removeEventListener('online', this.#onOnline);
    this.#network.events.removeEventListener('offline', this.#onOffline);
  }

  /**
   * The browser says the network went away or came back. Offline: the socket is
   * dropped at once (it would otherwise look alive until a ping times out) and no
   * attempt counts as a failure until the network is back. Online: the waiting
   * reconnect happens now, after a short jitter, instead of at its backoff delay.
   */
  #networkChanged(online: boolean): void {
    if (this.#state === 'closed' || this.#state === 'idle') return;
    this.#logger?.debug?.({ online }, 'shardcast: network changed');
    if (!online) {
      if (this.#socket) this.#abandon(this.#socket, 'the browser went offline');
      return;
    }
    if (this.#state === 'reconnecting' && this.#reconnectTimer && this.#goAwayUntil === 0) {
      clearTimeout(this.#reconnectTimer);
      this.#failingSince = null;
      this.#reconnectTimer = setTimeout(() => void this.#open(), backoffDelay(0, this.#backoff));
    } else if (this.#state === 'open' && this.#socket) {
      // The old socket may have died unnoticed while offline: a ping finds out fast.
      this.#sendPing(this.#socket);
    }
  }

  #isOffline(): boolean {
    return this.#network !== null && !this.#network.isOnline();
  }

  /** Gives up on a socket that stopped answering; its late close event is ignored. */
  #abandon(socket: WebSocketLike, why: string): void {
    if (socket !== this.#socket) return;
    this.#logger?.warn?.({ url: this.#url }, `shardcast: dropping connection: ${why}`);
    this.#lastTransportError = why;
    this.#socket = null;
    const terminate = (socket as { terminate?: () => void }).terminate;
    try {
      if (terminate) terminate.call(socket);
      else socket.close();
    } catch {
      // The socket is being discarded; a failure to close it changes nothing.
    }
    this.#connectionLost(1006, '');
  }

  /** The current connection is gone (closed, failed, or abandoned): retry or stop. */
  #connectionLost(code: number, reason: string): void {
    this.#socket = null;
    this.#hello = null;
    this.#stopConnectionTimers();
    this.#joinIds.clear();
    for (const sub of this.#subs.values()) sub.handleDisconnect();
    const sent = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const pending of sent) {
      pending.id = null;
      if (pending.onDrop === 'reject') {
        pending.settle(new ShardcastError(ClientErrorCode.Disconnected, 'connection lost after the request was sent; its outcome is unknown', true));
      } else if (pending.onDrop === 'settle') {
        pending.settle(null);
      }
    }
    if (this.#state === 'closed') return;

    const error = this.#lastTransportError;
    const fixedToken = typeof this.#token !== 'function';
    const terminal = !closeIsRetryable(code) || (code === CloseCode.TokenExpired && fixedToken) || !this.#reconnectEnabled;
    if (terminal) {
      const name = closeCodeNames.get(code) ?? 'close';
      const detail = [reason, error].filter((s) => s).join('; ');
      const hint = code === CloseCode.TokenExpired ? ' (pass `token` as a function to reconnect with a fresh one)' : '';
      this.#shutdown(
        new ShardcastError(code, `connection closed: ${name} (${code})${detail ? `: ${detail}` : ''}${hint}`, false),
        'failed',
        { code, reason, byClient: false },
      );
      return;
    }

    let delay: number;
    if (this.#goAwayUntil > 0) {
      delay = Math.max(0, this.#goAwayUntil - Date.now());
      this.#goAwayUntil = 0;
    } else if (this.#isOffline()) {
      // The network is away, not the gateway: wait for 'online' (which reschedules
      // this timer) without growing the backoff; the cap is a fallback for a browser
      // that never says it is back.
      delay = this.#backoff.maxMs;
    } else {
      const now = Date.now();
      this.#failingSince ??= now;
      delay = backoffDelay(now - this.#failingSince, this.#backoff);
    }
    this.#logger?.debug?.({ code, reason, error, reconnectInMs: delay }, 'shardcast: disconnected');
    this.#setState('reconnecting');
    this.emit('disconnected', error ? { code, reason, error, reconnectInMs: delay } : { code, reason, reconnectInMs: delay });
    if (this.#state !== 'reconnecting') return; // a listener closed the client
    this.#reconnectTimer = setTimeout(() => void this.#open(), delay);
  }

  #fatal(message: string): void {
    this.#shutdown(new ShardcastError(ClientErrorCode.InvalidUse, message, false), 'failed', { code: 1006, reason: message, byClient: false });
  }

  /** Ends everything: the one place that leaves no timer, request or subscription behind. */
  #shutdown(error: ShardcastError, subEnd: 'closed' | 'failed', info: CloseInfo): void {
    this.#setState('closed');
    this.#unwatchNetwork();
    this.#socket = null;
    this.#hello = null;
    this.#attemptSeq++;
    this.#stopConnectionTimers();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#joinIds.clear();
    this.#joinFailures.clear();
    this.#inflight.clear();
    for (const pending of [...this.#pending]) pending.settle(error);
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
    const subs = [...this.#subs.values()];
    this.#subs.clear();
    for (const sub of subs) sub.end(subEnd, subEnd === 'failed' ? error : undefined);
    if (!info.byClient) this.emit('error', error);
    this.emit('closed', info);
  }

  #stopConnectionTimers(): void {
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    if (this.#pongTimer) clearTimeout(this.#pongTimer);
    this.#pongTimer = null;
    this.#pingsSent.clear();
    this.#draining = false;
  }

  /**
   * Pings on the connection: one right away (so serverTimeOffset() is known soon
   * after connecting), then every pingIntervalMs — at most half the server's idle
   * timeout, which keeps the server from timing us out (SPEC §13). A ping after which
   * nothing at all comes back within a few seconds means a dead link.
   */
  #startPings(socket: WebSocketLike, idleSeconds: number): void {
    const idleMs = idleSeconds > 0 ? (idleSeconds * 1000) / 2 : Infinity;
    const intervalMs = Math.max(MIN_PING_INTERVAL_MS, Math.min(this.#pingIntervalMs, idleMs));
    this.#pongTimeoutMs = Math.min(PONG_TIMEOUT_MS, intervalMs);
    this.#sendPing(socket);
    this.#pingTimer = setInterval(() => this.#sendPing(socket), intervalMs);
  }

  #sendPing(socket: WebSocketLike): void {
    if (socket !== this.#socket || this.#pongTimer) return;
    const pongTimeoutMs = this.#pongTimeoutMs;
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = null;
      this.#abandon(socket, `no reply to ping within ${pongTimeoutMs} ms`);
    }, pongTimeoutMs);
    const id = this.#nextId();
    // Entries of pings whose pong never comes go with the connection (#stopConnectionTimers).
    this.#pingsSent.set(id, Date.now());
    this.#send({ t: 'ping', id });
  }

  /** A pong with the server's clock: one more sample for serverTimeOffset(). */
  #onPong(id: number, serverNow: number | undefined): void {
    const sentAt = this.#pingsSent.get(id);
    this.#pingsSent.delete(id);
    if (sentAt === undefined || serverNow === undefined) return;
    const receivedAt = Date.now();
    const rtt = Math.max(0, receivedAt - sentAt);
    this.#clockSamples.push({ rtt, offset: serverNow + rtt / 2 - receivedAt });
    if (this.#clockSamples.length > CLOCK_SAMPLES) this.#clockSamples.shift();
  }

  #nextId(): number {
    this.#lastId = this.#lastId >= MAX_REQUEST_ID ? 1 : this.#lastId + 1;
    return this.#lastId;
  }

  #send(frame: ClientFrame): void {
    const socket = this.#socket;
    if (!socket) return;
    try {
      socket.send(encodeClientFrame(frame));
    } catch (err) {
      // A socket that is closing throws or drops; its close event drives recovery.
      this.#logger?.debug?.({ err: String(err), t: frame.t }, 'shardcast: send failed');
    }
  }

  // ------------------------------------------------------------------ incoming frames

  #onMessage(data: unknown): void {
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.#logger?.warn?.({ type: typeof data }, 'shardcast: ignoring non-binary frame');
      return;
    }
    const decoded = decode(bytes);
    const frame = decoded.ok ? parseServerFrame(decoded.value) : null;
    if (!frame) {
      // Ignored rather than fatal: a newer server may send frame types this SDK does not know.
      this.#logger?.warn?.({ reason: decoded.ok ? 'not a valid server frame' : decoded.reason }, 'shardcast: ignoring frame');
      return;
    }
    if (this.#pongTimer) {
      // Any frame proves the link is alive.
      clearTimeout(this.#pongTimer);
      this.#pongTimer = null;
    }
    if (!this.#hello) {
      if (frame.t === 'hello') this.#onHello(frame);
      else this.#logger?.warn?.({ t: frame.t }, 'shardcast: ignoring frame before hello');
      return;
    }
    switch (frame.t) {
      case 'hello':
        return;
      case 'ev':
        this.#subs.get(frame.s)?.handleEvent(frame);
        return;
      case 'joined': {
        const sub = this.#joinIds.get(frame.id);
        this.#joinIds.delete(frame.id);
        if (!sub || this.#subs.get(sub.session) !== sub) return;
        this.#joinFailures.delete(sub);
        if ([...this.#subs.values()].every((s) => s.state === 'joined' || s === sub)) this.#failingSince = null;
        sub.handleJoined(frame);
        this.#flush(sub);
        return;
      }
      case 'resync':
        this.#subs.get(frame.s)?.handleResync(frame);
        return;
      case 'pjoin':
        this.#subs.get(frame.s)?.handlePresence({ kind: 'join', user: frame.u });
        return;
      case 'pleave':
        this.#subs.get(frame.s)?.handlePresence({ kind: 'leave', user: frame.u });
        return;
      case 'goaway':
        this.#onGoAway(frame);
        return;
      case 'pong':
        this.#onPong(frame.id, frame.now);
        return;
      case 'error':
        this.#onError(frame);
        return;
      case 'ack':
      case 'left':
      case 'presence':
        this.#inflight.get(frame.id)?.settle(frame);
        return;
    }
  }

  #onHello(hello: HelloFrame): void {
    const socket = this.#socket;
    if (!socket) return;
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    this.#hello = hello;
    // SPEC §20: the backoff resets once a connection said hello and a join succeeded
    // (a server that accepts and then fails every join must not be hammered).
    if (this.#subs.size === 0) this.#failingSince = null;
    this.#goAwayUntil = 0;
    this.#lastTransportError = undefined;
    this.#setState('open');
    this.#startPings(socket, hello.ping);
    this.#logger?.debug?.({ conn: hello.conn, user: hello.user }, 'shardcast: connected');
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.resolve(hello);
    this.emit('connected', hello);
    if (this.#socket !== socket) return; // a listener closed the client
    for (const sub of this.#subs.values()) this.#sendJoin(sub);
    this.#flush(null);
  }

  #onGoAway(frame: GoAwayFrame): void {
    this.#goAwayUntil = Date.now() + frame.delay;
    this.#draining = true;
    for (const point of frame.pos) this.#subs.get(point.s)?.handleResumePoint(point);
    this.#logger?.debug?.({ reason: frame.reason, delay: frame.delay }, 'shardcast: go-away');
    this.emit('goaway', frame);
  }

  #onError(frame: ErrorFrame): void {
    const error = errorFromFrame(frame);
    if (frame.id === undefined) {
      this.emit('error', error);
      return;
    }
    const joining = this.#joinIds.get(frame.id);
    if (joining) {
      this.#joinIds.delete(frame.id);
      this.#onJoinRefused(joining, error);
      return;
    }
    this.#inflight.get(frame.id)?.settle(error);
  }

  #onJoinRefused(sub: Subscription, error: ShardcastError): void {
    if (this.#subs.get(sub.session) !== sub) return;
    sub.handleJoinError(error);
    if (error.retryable && this.#reconnectEnabled) {
      const since = this.#joinFailures.get(sub) ?? Date.now();
      this.#joinFailures.set(sub, since);
      const socket = this.#socket;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        // After a reconnect the hello already rejoined it.
        if (socket === this.#socket && this.#state === 'open' && this.#subs.get(sub.session) === sub) this.#sendJoin(sub);
      }, backoffDelay(Date.now() - since, this.#backoff));
      this.#timers.add(timer);
      return;
    }
    this.#subs.delete(sub.session);
    this.#joinFailures.delete(sub);
    this.#settleRequestsOf(sub, error);
    sub.end('failed', error);
  }

  // ------------------------------------------------------------------ requests

  #sendJoin(sub: Subscription): void {
    const id = this.#nextId();
    this.#joinIds.set(id, sub);
    const pos = sub.position;
    this.#send({
      t: 'join',
      id,
      s: sub.session,
      ...(pos ? { ep: pos.epoch, seq: pos.seq } : {}),
      ...(sub.wantsPresence ? { pres: true } : {}),
    });
  }

  /** Registers a request; it is sent as soon as its subscription is joined on an open connection. */
  #request<T>(
    sub: Subscription | null,
    build: (id: number) => ClientFrame,
    onDrop: Pending['onDrop'],
    timeoutMs: number,
    accept: (reply: ServerFrame | null) => T | ShardcastError,
  ): Promise<T> {
    if (this.#state === 'closed') {
      return Promise.reject(new ShardcastError(ClientErrorCode.Closed, 'client is closed', false));
    }
    if (sub && this.#subs.get(sub.session) !== sub) {
      return Promise.reject(new ShardcastError(ClientErrorCode.Left, `subscription to ${sub.session} has ended`, false));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => pending.settle(new ShardcastError(ClientErrorCode.Timeout, `no reply within ${timeoutMs} ms`, true)),
        timeoutMs,
      );
      const pending: Pending = {
        sub,
        build,
        onDrop,
        id: null,
        settle: (outcome) => {
          if (!this.#pending.delete(pending)) return;
          clearTimeout(timer);
          if (pending.id !== null) this.#inflight.delete(pending.id);
          const result = outcome instanceof ShardcastError ? outcome : accept(outcome);
          if (result instanceof ShardcastError) reject(result);
          else resolve(result);
        },
      };
      this.#pending.add(pending);
      this.#trySend(pending);
    });
  }

  #trySend(pending: Pending): void {
    if (pending.id !== null || this.#state !== 'open' || !this.#socket || this.#draining) return;
    if (pending.sub && pending.sub.state !== 'joined') return;
    const id = this.#nextId();
    pending.id = id;
    this.#inflight.set(id, pending);
    this.#send(pending.build(id));
  }

  /** Sends what waited for this subscription (or, with null, for a connection). */
  #flush(sub: Subscription | null): void {
    for (const pending of [...this.#pending]) {
      if (pending.sub === sub) this.#trySend(pending);
    }
  }

  #settleRequestsOf(sub: Subscription, error: ShardcastError): void {
    for (const pending of [...this.#pending]) {
      if (pending.sub === sub) pending.settle(error);
    }
  }

  #publish(sub: Subscription, type: string, data: Value, opts: RequestOptions): Promise<{ seq: number }> {
    return this.#request(
      sub,
      (id) => ({ t: 'pub', id, s: sub.session, type, data }),
      'reject', // a pub carries no idempotency key: resending could publish twice
      opts.timeoutMs ?? this.#timeoutMs,
      (reply) => (reply?.t === 'ack' && reply.seq !== undefined ? { seq: reply.seq } : unexpectedReply(reply, 'ack')),
    );
  }

  #command(sub: Subscription, type: string, data: Value, opts: CommandOptions): Promise<{ cid: string; dup: boolean }> {
    const cid = opts.cid ?? randomCid();
    return this.#request(
      sub,
      (id) => ({ t: 'cmd', id, s: sub.session, cid, type, data }),
      'resend', // same cid: the server answers a repeat with the first outcome
      opts.timeoutMs ?? this.#timeoutMs,
      (reply) => (reply?.t === 'ack' ? { cid: reply.cid ?? cid, dup: reply.dup === true } : unexpectedReply(reply, 'ack')),
    ).catch((err: unknown) => {
      // The caller needs the cid to retry safely, also when it was generated here.
      throw err instanceof ShardcastError ? err.withCid(cid) : err;
    });
  }

  #presence(sub: Subscription, opts: RequestOptions): Promise<PresenceEntry[]> {
    return this.#request(
      sub,
      (id) => ({ t: 'presence', id, s: sub.session }),
      'resend',
      opts.timeoutMs ?? this.#timeoutMs,
      (reply) => (reply?.t === 'presence' ? reply.users : unexpectedReply(reply, 'presence')),
    );
  }

  #leave(sub: Subscription): Promise<void> {
    if (this.#subs.get(sub.session) !== sub) {
      sub.end('left');
      return Promise.resolve();
    }
    this.#subs.delete(sub.session);
    this.#joinFailures.delete(sub);
    this.#settleRequestsOf(sub, new ShardcastError(ClientErrorCode.Left, `left ${sub.session} before the request finished`, false));
    sub.end('left');
    // Not connected: nothing to tell the server, and the next connection will not rejoin it.
    if (this.#state !== 'open') return Promise.resolve();
    return this.#request(
      null,
      (id) => ({ t: 'leave', id, s: sub.session }),
      'settle', // a dropped connection leaves every session anyway
      this.#timeoutMs,
      (reply) => {
        if (reply === null || reply.t === 'left') return undefined;
        if (reply.t === 'error' && reply.code === ErrorCode.NotJoined) return undefined;
        return unexpectedReply(reply, 'left');
      },
    );
  }

  /** A listener threw: reported to the logger (error, else warn), or console.error without one, and through 'error'. */
  #reportListenerError(err: unknown): void {
    const logger = this.#logger;
    const log = logger?.error ?? logger?.warn;
    if (logger === null) console.error('shardcast: a listener threw', err);
    else log?.call(logger, { err }, 'shardcast: a listener threw');
    const error = new ShardcastError(ClientErrorCode.InvalidUse, `a listener threw: ${err instanceof Error ? err.message : String(err)}`, false);
    // Report once, and never through the error listeners that may have thrown.
    if (this.listenerCount('error') > 0) {
      const saved = this.onListenerError;
      this.onListenerError = () => {};
      this.emit('error', error);
      this.onListenerError = saved;
    }
  }
}
