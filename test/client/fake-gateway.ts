/**
 * A small stand-in for the Shardcast daemon, for testing the client SDK and the
 * admin CLI without the real gateway: a `ws` WebSocketServer on port 0 speaking
 * shardcast.v1 frames through the real codec, with an in-memory history per
 * session. Tests steer it through `handlers` and the per-connection helpers.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { decode, encodeServerFrame } from '../../protocol/codec.js';
import type {
  ClientFrame,
  CmdFrame,
  EventFrame,
  JoinFrame,
  PingFrame,
  PubFrame,
  ServerFrame,
  SnapshotEntry,
  Value,
} from '../../protocol/frames.js';

/** One client connection as the fake server sees it. */
export interface FakeConnection {
  readonly ws: WebSocket;
  readonly id: string;
  readonly user: string;
  readonly token: string | null;
  /** How the token came: the `bearer.` subprotocol or the query string. */
  readonly tokenVia: 'protocol' | 'query' | null;
  readonly protocol: string;
  /** Every frame received from the client, in order. */
  readonly frames: ClientFrame[];
  readonly joined: Set<string>;
  send(frame: ServerFrame): void;
}

/** Hooks: return true when the hook handled the frame itself. */
export interface FakeHandlers {
  /** Decide whether a new connection is accepted; return a close code to refuse it after the upgrade. */
  accept?: (conn: FakeConnection) => number | undefined;
  join?: (conn: FakeConnection, frame: JoinFrame) => boolean;
  cmd?: (conn: FakeConnection, frame: CmdFrame) => boolean;
  pub?: (conn: FakeConnection, frame: PubFrame) => boolean;
  ping?: (conn: FakeConnection, frame: PingFrame) => boolean;
}

interface SessionLog {
  epoch: string;
  events: EventFrame[];
  snap: Record<string, SnapshotEntry>;
}

export interface FakeGatewayOptions {
  /** Idle timeout announced in `hello`, in seconds (0: the client sends no pings). */
  ping?: number;
  /** Replay the whole history on a recovered join (the client must drop what it has). */
  overlapReplay?: boolean;
}

/** The fake gateway. Start with `FakeGateway.start()`, stop with `close()`. */
export class FakeGateway {
  readonly wss: WebSocketServer;
  readonly port: number;
  readonly url: string;
  readonly connections: FakeConnection[] = [];
  readonly handlers: FakeHandlers = {};
  readonly sessions = new Map<string, SessionLog>();
  /** Command ids seen, per session and user: the fake's idempotency journal. */
  readonly commands = new Map<string, CmdFrame[]>();
  options: FakeGatewayOptions;
  #nextConn = 1;
  #connWaiters: ((conn: FakeConnection) => void)[] = [];

  private constructor(wss: WebSocketServer, options: FakeGatewayOptions) {
    this.wss = wss;
    this.port = (wss.address() as AddressInfo).port;
    this.url = `ws://127.0.0.1:${this.port}/v1/ws`;
    this.options = options;
    wss.on('connection', (ws, req) => this.#onConnection(ws, req));
  }

  static async start(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      path: '/v1/ws',
      handleProtocols: (protocols) => (protocols.has('shardcast.v1') ? 'shardcast.v1' : false),
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeGateway(wss, options);
  }

  /** Resolves with the next connection (or the n-th overall, counting from 1). */
  nextConnection(n?: number): Promise<FakeConnection> {
    if (n !== undefined && this.connections.length >= n) return Promise.resolve(this.connections[n - 1]);
    return new Promise((resolve) => {
      const waiter = (conn: FakeConnection): void => {
        if (n === undefined || this.connections.length >= n) resolve(n === undefined ? conn : this.connections[n - 1]);
        else this.#connWaiters.push(waiter);
      };
      this.#connWaiters.push(waiter);
    });
  }

  /** Resolves when a connection has received a frame matching `pred`. */
  async waitFrame<T extends ClientFrame>(conn: FakeConnection, pred: (f: ClientFrame) => f is T, from = 0): Promise<T> {
    for (;;) {
      const found = conn.frames.slice(from).find(pred);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  #log(session: string): SessionLog {
    let log = this.sessions.get(session);
    if (!log) {
      log = { epoch: 'ep1', events: [], snap: {} };
      this.sessions.set(session, log);
    }
    return log;
  }

  /** Sequences an event and sends it to every connection that joined the session. */
  publish(session: string, type: string, data: Value, opts: { snapshot?: string; live?: boolean } = {}): EventFrame {
    const log = this.#log(session);
    const ev: EventFrame = {
      t: 'ev',
      s: session,
      seq: log.events.length + 1,
      ep: log.epoch,
      type,
      data,
      ts: Date.now(),
      ...(opts.snapshot ? { k: opts.snapshot } : {}),
    };
    log.events.push(ev);
    if (opts.snapshot) log.snap[opts.snapshot] = { seq: ev.seq, type, data, ts: ev.ts };
    if (opts.live !== false) {
      for (const conn of this.connections) {
        if (conn.joined.has(session) && conn.ws.readyState === conn.ws.OPEN) conn.send(ev);
      }
    }
    return ev;
  }

  /** Forgets a session's history under a new epoch (as when Redis restarts empty). */
  resetEpoch(session: string, epoch: string): void {
    const log = this.#log(session);
    log.epoch = epoch;
    log.events = [];
  }

  #onConnection(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const frames: ClientFrame[] = [];
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const bearer = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
    const token = bearer ?? url.searchParams.get('token');
    const conn: FakeConnection = {
      ws,
      id: `c${this.#nextConn++}`,
      user: url.searchParams.get('user') ?? token ?? 'anon',
      token,
      tokenVia: bearer !== undefined ? 'protocol' : url.searchParams.has('token') ? 'query' : null,
      protocol: ws.protocol,
      frames,
      joined: new Set(),
      send: (frame) => ws.send(encodeServerFrame(frame)),
    };
    this.connections.push(conn);
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return ws.close(4500, 'text frame');
      const decoded = decode(new Uint8Array(data as Buffer));
      if (!decoded.ok) return ws.close(4500, 'undecodable');
      const frame = decoded.value as ClientFrame;
      frames.push(frame);
      this.#onFrame(conn, frame);
    });
    const waiters = this.#connWaiters;
    this.#connWaiters = [];
    const refuse = this.handlers.accept?.(conn);
    if (refuse !== undefined) {
      ws.close(refuse, 'refused by test');
    } else {
      conn.send({ t: 'hello', v: 1, conn: conn.id, user: conn.user, ping: this.options.ping ?? 0 });
    }
    for (const waiter of waiters) waiter(conn);
  }

  #onFrame(conn: FakeConnection, frame: ClientFrame): void {
    switch (frame.t) {
      case 'join': {
        if (this.handlers.join?.(conn, frame)) return;
        const log = this.#log(frame.s);
        const head = log.events.length;
        conn.joined.add(frame.s);
        const recovered = frame.ep === log.epoch && frame.seq !== undefined && frame.seq <= head;
        if (recovered) {
          conn.send({ t: 'joined', id: frame.id, s: frame.s, ep: log.epoch, seq: head, rec: true });
          const from = this.options.overlapReplay ? 0 : frame.seq ?? 0;
          for (const ev of log.events.slice(from)) conn.send(ev);
        } else {
          conn.send({ t: 'joined', id: frame.id, s: frame.s, ep: log.epoch, seq: head, rec: false, snap: { ...log.snap } });
        }
        return;
      }
      case 'leave':
        conn.joined.delete(frame.s);
        conn.send({ t: 'left', id: frame.id, s: frame.s });
        return;
      case 'pub': {
        if (this.handlers.pub?.(conn, frame)) return;
        const ev = this.publish(frame.s, frame.type, frame.data);
        conn.send({ t: 'ack', id: frame.id, seq: ev.seq });
        return;
      }
      case 'cmd': {
        const key = `${frame.s}\u0000${conn.user}`;
        const seen = this.commands.get(key) ?? [];
        const dup = seen.some((c) => c.cid === frame.cid);
        seen.push(frame);
        this.commands.set(key, seen);
        if (this.handlers.cmd?.(conn, frame)) return;
        conn.send({ t: 'ack', id: frame.id, cid: frame.cid, dup });
        return;
      }
      case 'presence': {
        const counts = new Map<string, number>();
        for (const c of this.connections) {
          if (c.joined.has(frame.s) && c.ws.readyState === c.ws.OPEN) counts.set(c.user, (counts.get(c.user) ?? 0) + 1);
        }
        conn.send({ t: 'presence', id: frame.id, s: frame.s, users: [...counts].map(([u, n]) => ({ u, n })) });
        return;
      }
      case 'ping':
        if (this.handlers.ping?.(conn, frame)) return;
        conn.send({ t: 'pong', id: frame.id });
        return;
    }
  }

  /** Stops the server and drops every connection. */
  async close(): Promise<void> {
    for (const conn of this.connections) conn.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
