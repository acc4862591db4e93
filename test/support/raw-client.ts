/**
 * A deliberately plain protocol client for end-to-end tests: a `ws` socket, the
 * codec, every received frame recorded in order. Tests assert on exact frames, so
 * this client adds no behaviour of its own (no resume, no dedupe); the SDK has its
 * own tests.
 */
import WebSocket from 'ws';
import { decode, encode } from '../../protocol/codec.js';
import type { ClientFrame, EventFrame, ServerFrame } from '../../protocol/frames.js';

/** How a socket closed. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** A connected raw client. */
export class RawClient {
  readonly frames: ServerFrame[] = [];
  /** When each frame arrived (Date.now()), by index in `frames`. */
  readonly arrivedAt: number[] = [];
  readonly closed: Promise<CloseInfo>;
  private waiters: Array<() => void> = [];
  private nextId = 1;

  constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      const r = decode(data);
      this.frames.push((r.ok ? r.value : { t: 'undecodable' }) as ServerFrame);
      this.arrivedAt.push(Date.now());
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    ws.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connects; `user` uses dev mode, `token` a JWT. Resolves once `hello` arrived or the server closed the socket. */
  static connect(url: string, opts: { user?: string; token?: string; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<RawClient> {
    const q = new URLSearchParams();
    if (opts.user !== undefined) q.set('user', opts.user);
    if (opts.token !== undefined) q.set('token', opts.token);
    const ws = new WebSocket(`${url}?${q}`, opts.protocols ?? ['shardcast.v1'], { headers: opts.headers });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => {
        ws.off('error', reject);
        const hello = client.until((fs) => fs.length > 0, 10_000, 'hello');
        void Promise.race([hello, client.closed]).then(() => resolve(client), reject);
      });
    });
  }

  /** Sends a client frame. */
  send(frame: ClientFrame | Record<string, unknown>): void {
    this.ws.send(encode(frame));
  }

  /** Sends raw bytes or text. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /** A fresh request id. */
  id(): number {
    return this.nextId++;
  }

  /** Waits until `pred` holds over the frames received so far. */
  async until(pred: (frames: ServerFrame[]) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.frames.length} frames, last: ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the first frame matching `pred` and returns it. */
  async next<T extends ServerFrame>(pred: (f: ServerFrame) => f is T, timeoutMs?: number): Promise<T>;
  async next(pred: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
  async next(pred: (f: ServerFrame) => boolean, timeoutMs = 10_000): Promise<ServerFrame> {
    await this.until((fs) => fs.some(pred), timeoutMs, 'a matching frame');
    return this.frames.find(pred)!;
  }

  /** Joins a session and waits for `joined`. */
  async join(session: string, extra: { ep?: string; seq?: number; pres?: boolean } = {}): Promise<ServerFrame> {
    const id = this.id();
    this.send({ t: 'join', id, s: session, ...extra });
    return this.next((f) => (f.t === 'joined' || f.t === 'error') && 'id' in f && f.id === id);
  }

  /** Events of a session received so far, in arrival order. */
  events(session?: string): EventFrame[] {
    return this.frames.filter((f): f is EventFrame => f.t === 'ev' && (session === undefined || f.s === session));
  }

  /** The shard that accepted this connection (from the hello's connection id). */
  shard(): number {
    const hello = this.frames.find((f) => f.t === 'hello');
    if (!hello || hello.t !== 'hello') return -1;
    return Number(hello.conn.split('.')[1]);
  }

  /** Stops reading from the socket (the server's buffer for it fills up). */
  pauseReading(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  /** Starts reading again. */
  resumeReading(): void {
    (this.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }

  /** Closes the socket and waits for the close. */
  async close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    return this.closed;
  }

  /** Drops the TCP connection without a close handshake. */
  terminate(): void {
    this.ws.terminate();
  }
}
