/**
 * One client process of the jitter scenario (forked by jitter.ts, talking over IPC):
 * it runs its share of SDK clients with default settings and, once told, kills each
 * client's socket every 15–20 s without a close frame (`terminate()`, the client sees
 * 1006) and keeps that client's network away for 1 s (connection attempts meanwhile go
 * to a port that refuses them at once). It measures what each client's application
 * sees: every event index once, the latency of each event from its publish, which
 * events came as a replay after a resume, how long each outage kept the client away,
 * and how many connection attempts it took. With JITTER_DEBUG=1 it prints each
 * outage's timeline (disconnects, hello, rejoin) to stderr.
 */
import { WebSocket } from 'ws';
import { ShardcastClient, type WebSocketConstructor } from '../../protocol/client/index.js';
import { nowUs } from '../load/payload.js';

/** Parent → child. */
export type JitterCommand =
  | { op: 'start'; clients: { url: string; session: string; user: string }[]; killEveryMs: [number, number]; offlineMs: number }
  | { op: 'jitter' }
  | { op: 'finish'; events: number; settleMs: number };

/** Child → parent. */
export type JitterMessage = { op: 'ready'; failed: number } | { op: 'report'; report: JitterReport } | { op: 'error'; message: string };

/** What one process measured. */
export interface JitterReport {
  clients: number;
  expected: number;
  delivered: number;
  duplicated: number;
  /** Latency (publish → application) of every delivered event, ms. */
  latencies: number[];
  /** The same for events that reached the client as a replay after a resume. */
  replayed: number[];
  /**
   * Replayed events' latency counted from when they could first be delivered: the
   * later of their publish and the network's return, ms. The rest of `replayed` is
   * the outage itself, which no client can shorten.
   */
  replayedAfterReturn: number[];
  /** Per outage: kill → rejoined, ms. */
  outages: number[];
  /** Per outage: network back → rejoined, ms (negative never: the network is away for offlineMs). */
  afterReturn: number[];
  /** Per outage: network back → the first attempt that could reach the gateway, ms (the SDK backoff's share). */
  firstTry: number[];
  kills: number;
  /** Connection attempts after the first connection of each client. */
  attempts: number;
  /** 'disconnected' events the SDK reported (kills plus anything else, e.g. pong timeouts). */
  disconnects: number;
}

/** A port nothing listens on: connecting to it is refused at once (the network is "away"). */
const REFUSED_URL = 'ws://127.0.0.1:1/v1/ws';
const PAYLOAD = /^~bx:(\d+)\.(\d+):/;

/** One client and its link. */
class JitteredClient {
  readonly client: ShardcastClient;
  readonly seen = new Map<number, number>();
  readonly latencies: number[] = [];
  readonly replayed: number[] = [];
  readonly replayedAfterReturn: number[] = [];
  readonly outages: number[] = [];
  readonly afterReturn: number[] = [];
  /** Per outage: network back → the SDK's first attempt that could reach the gateway, ms (the backoff's share of afterReturn). */
  readonly firstTry: number[] = [];
  retried = false;
  socket: WebSocket | null = null;
  offlineUntil = 0;
  attempts = -1;
  kills = 0;
  disconnects = 0;
  killedAt = 0;
  /** When the last outage's network came back, on nowUs()'s clock (the publisher's). */
  returnAtUs = 0;
  replayUpTo = -1;
  timer: ReturnType<typeof setTimeout> | null = null;
  ready: Promise<unknown>;

  constructor(url: string, session: string, user: string, readonly offlineMs: number) {
    const link = this;
    // The SDK opens every connection through this constructor: the test controls the link.
    const Linked = class extends WebSocket {
      constructor(target: string, protocols?: string | string[]) {
        const now = Date.now();
        const offline = now < link.offlineUntil;
        super(offline ? REFUSED_URL : target, protocols);
        if (!offline && link.killedAt > 0 && !link.retried) {
          link.retried = true;
          link.firstTry.push(now - (link.killedAt + link.offlineMs));
        }
        link.attempts++;
        link.socket = this;
      }
    } as unknown as WebSocketConstructor;
    this.client = new ShardcastClient({ url, user, WebSocket: Linked });
    this.client.on('disconnected', (d) => {
      this.disconnects++;
      if (process.env.JITTER_DEBUG && this.killedAt > 0) process.stderr.write(`${user} +${Date.now() - this.killedAt} disconnected ${d.code} ${d.error ?? ''} next in ${d.reconnectInMs}\n`);
    });
    this.client.on('connected', () => {
      if (process.env.JITTER_DEBUG && this.killedAt > 0) process.stderr.write(`${user} +${Date.now() - this.killedAt} hello\n`);
    });
    const sub = this.client.join(session);
    sub.on('joined', (joined) => {
      if (this.killedAt > 0) {
        const now = Date.now();
        if (process.env.JITTER_DEBUG) process.stderr.write(`${user} +${now - this.killedAt} joined rec=${joined.rec}\n`);
        this.outages.push(now - this.killedAt);
        this.afterReturn.push(now - (this.killedAt + this.offlineMs));
        this.killedAt = 0;
      }
      if (joined.rec) this.replayUpTo = joined.seq;
    });
    sub.on('event', (ev) => {
      const m = typeof ev.data === 'string' ? PAYLOAD.exec(ev.data) : null;
      if (!m) return;
      const index = Number(m[1]);
      const now = nowUs();
      const publishedUs = Number(m[2]);
      const latency = (now - publishedUs) / 1000;
      this.seen.set(index, (this.seen.get(index) ?? 0) + 1);
      this.latencies.push(latency);
      if (ev.seq <= this.replayUpTo) {
        this.replayed.push(latency);
        this.replayedAfterReturn.push((now - Math.max(publishedUs, this.returnAtUs)) / 1000);
      }
    });
    this.ready = sub.ready;
  }

  /** Kills the socket without a close frame and keeps the network away for offlineMs. */
  kill(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.killedAt > 0) return;
    this.kills++;
    this.killedAt = Date.now();
    this.offlineUntil = this.killedAt + this.offlineMs;
    this.returnAtUs = nowUs() + this.offlineMs * 1000;
    this.retried = false;
    socket.terminate();
  }

  schedule(range: [number, number], first: boolean): void {
    const [lo, hi] = range;
    const delay = first ? 1000 + Math.random() * (hi - 2000) : lo + Math.random() * (hi - lo);
    this.timer = setTimeout(() => {
      this.kill();
      this.schedule(range, false);
    }, delay);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

let clients: JitteredClient[] = [];
let killEveryMs: [number, number] = [15_000, 20_000];

function send(message: JitterMessage): void {
  process.send?.(message);
}

async function onCommand(command: JitterCommand): Promise<void> {
  switch (command.op) {
    case 'start': {
      killEveryMs = command.killEveryMs;
      clients = command.clients.map((c) => new JitteredClient(c.url, c.session, c.user, command.offlineMs));
      const outcomes = await Promise.allSettled(clients.map((c) => c.ready));
      send({ op: 'ready', failed: outcomes.filter((o) => o.status === 'rejected').length });
      return;
    }
    case 'jitter':
      for (const c of clients) c.schedule(killEveryMs, true);
      return;
    case 'finish': {
      for (const c of clients) c.stop();
      // Let every client get back and catch up, up to settleMs.
      const end = Date.now() + command.settleMs;
      while (Date.now() < end && clients.some((c) => c.seen.size < command.events || c.killedAt > 0)) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const report: JitterReport = {
        clients: clients.length,
        expected: clients.length * command.events,
        delivered: 0,
        duplicated: 0,
        latencies: [],
        replayed: [],
        replayedAfterReturn: [],
        outages: [],
        afterReturn: [],
        firstTry: [],
        kills: 0,
        attempts: 0,
        disconnects: 0,
      };
      for (const c of clients) {
        for (const [index, count] of c.seen) {
          if (index < command.events) report.delivered++;
          report.duplicated += count - 1;
        }
        report.latencies.push(...c.latencies);
        report.replayed.push(...c.replayed);
        report.replayedAfterReturn.push(...c.replayedAfterReturn);
        report.outages.push(...c.outages);
        report.afterReturn.push(...c.afterReturn);
        report.firstTry.push(...c.firstTry);
        report.kills += c.kills;
        report.attempts += c.attempts;
        report.disconnects += c.disconnects;
      }
      await Promise.all(clients.map((c) => c.client.close()));
      // The parent disconnects once it has the report; with no socket or timer left, the process then exits.
      send({ op: 'report', report });
      return;
    }
  }
}

process.on('message', (command: JitterCommand) => {
  onCommand(command).catch((err: unknown) => send({ op: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
});
