/**
 * One process of SDK clients for a rollout run (rollout-run.ts forks it), so the
 * driving process does not also carry their sockets. Driven over IPC:
 *   parent → {op:'endpoints', ports:[…]}                      the ready instances from now on
 *   child  → {op:'endpoints'}                                 applied
 *   parent → {op:'start', clients:[{user, session}], connectsPerS}  connect each (at that pace), join its session
 *   child  → {op:'joined', failed}                            every client joined (or failed to)
 *   parent → {op:'report'}  child → {op:'report', clients:[ClientReport]}
 *   parent → {op:'close'}                                     close every client, then exit
 *
 * The Service: every connection the SDK opens goes to the next ready endpoint, round
 * robin, the way kube-proxy sends each new connection to a ready pod; connections
 * already open stay where they are until a side closes them. Done here, under the
 * SDK's WebSocket, rather than by a TCP proxy: a userland proxy hop cost as much CPU
 * as the gateway itself at 10,000 clients on two cores, where kube-proxy costs none.
 *
 * Each client counts what the application sees (the SDK's `event`s) and, under the
 * SDK, every `ev` frame that reached its socket, so a frame the server sent twice is
 * counted although the SDK would drop it.
 */
import { WebSocket } from 'ws';
import { decode } from '../../protocol/codec.js';
import { ShardcastClient, type WebSocketConstructor, type WebSocketLike } from '../../protocol/client/index.js';

/** What one client saw over the whole run. */
export interface ClientReport {
  user: string;
  session: string;
  /** The session's head when the client first joined: it expects every seq after it. */
  joinedAt: number;
  /** Events handed to the application. */
  received: number;
  /** Highest seq handed to the application. */
  last: number;
  /** The application saw exactly joinedAt+1..last, in order. */
  inOrder: boolean;
  /** `ev` frames that reached the socket for a seq it had already received (the SDK would hide them). */
  rawDuplicates: number;
  /** Joins after a reconnect that could not resume (rec: false). */
  notRecovered: number;
  /** Resumed joins after a lost connection. */
  resumes: number;
  /** For each resume: ms from the first reconnect attempt to the resumed `joined`. */
  resumeMs: number[];
  goaways: number;
  /** Connections lost before the client's first `joined` (they are not resumes: there is no position yet). */
  dropsBeforeJoin: number;
  /** Attempts that failed while resuming, by the close code the SDK reported (1006: no close frame). */
  failedAttempts: Record<string, number>;
}

/** Parent → clients process. */
export type ClientsCommand =
  | { op: 'endpoints'; ports: number[] }
  | { op: 'start'; clients: Array<{ user: string; session: string }>; connectsPerS: number }
  | { op: 'report' }
  | { op: 'close' };

/** Clients process → parent. */
export type ClientsMessage = { op: 'endpoints' } | { op: 'joined'; failed: number } | { op: 'report'; clients: ClientReport[] };

/** The URL the SDK is given; each connection goes to a ready endpoint instead (see above). */
const SERVICE_URL = 'ws://service.invalid/v1/ws';
let endpoints: number[] = [];
let nextEndpoint = 0;

/** `url` (path and query as the SDK made them) sent to the next ready endpoint, round robin. */
function toEndpoint(url: string): string {
  const target = new URL(url);
  target.hostname = '127.0.0.1';
  // No endpoint: port 1, where a connection is refused at once.
  target.port = String(endpoints.length === 0 ? 1 : endpoints[nextEndpoint++ % endpoints.length]);
  return target.toString();
}

/** ROLLOUT_DEBUG=1: each resume that was not recovered, with the position it resumed from, on stderr. */
const DEBUG = process.env.ROLLOUT_DEBUG === '1';
const clients: ShardcastClient[] = [];
const reports: ClientReport[] = [];

/** `ws`'s WebSocket to the next ready endpoint, counting every `ev` frame per seq before the SDK sees it. */
function countingSocket(report: ClientReport): WebSocketConstructor {
  const seen: Uint8Array[] = [];
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(toEndpoint(url), protocols);
      const add = this.addEventListener.bind(this) as (type: string, listener: (event: { data: unknown }) => void) => void;
      (this as unknown as WebSocketLike).addEventListener = ((type: string, listener: (event: { data: unknown }) => void) => {
        if (type !== 'message') return add(type, listener);
        add('message', (event) => {
          const data = event.data;
          const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
          if (bytes !== null) {
            const r = decode(bytes);
            if (r.ok && (r.value as { t?: unknown }).t === 'ev') {
              const seq = (r.value as { seq: number }).seq;
              const page = seen[seq >> 12] ?? (seen[seq >> 12] = new Uint8Array(4096));
              if (page[seq & 4095] === 1) report.rawDuplicates += 1;
              page[seq & 4095] = 1;
            }
          }
          listener(event);
        });
      }) as WebSocketLike['addEventListener'];
    }
  } as unknown as WebSocketConstructor;
}

function startClient(user: string, session: string): Promise<unknown> {
  const report: ClientReport = {
    user, session, joinedAt: -1, received: 0, last: 0, inOrder: true, rawDuplicates: 0, notRecovered: 0, resumes: 0, resumeMs: [], goaways: 0, dropsBeforeJoin: 0, failedAttempts: {},
  };
  reports.push(report);
  const client = new ShardcastClient({ url: SERVICE_URL, user, WebSocket: countingSocket(report), reconnect: { maxMs: 2000 } });
  clients.push(client);
  let firstAttemptAt: number | undefined;
  let lost = false;
  client.on('goaway', () => {
    report.goaways += 1;
  });
  let lostAt: { epoch: string; seq: number } | null = null;
  let lostCode = 0;
  client.on('disconnected', (d) => {
    if (report.joinedAt < 0) {
      report.dropsBeforeJoin += 1;
      return;
    }
    if (lost) {
      report.failedAttempts[d.code] = (report.failedAttempts[d.code] ?? 0) + 1;
    } else {
      lostAt = sub.position;
      lostCode = d.code;
    }
    lost = true;
    firstAttemptAt ??= Date.now() + d.reconnectInMs;
  });
  let helloAt = 0;
  client.on('connected', () => {
    helloAt = Date.now();
  });
  const sub = client.join(session);
  sub.on('joined', (j) => {
    if (DEBUG && lost && firstAttemptAt !== undefined && Number(user.slice(1)) % 100 === 0) {
      process.stderr.write(`${user} resume: attempt→hello ${helloAt - firstAttemptAt} ms, hello→joined ${Date.now() - helloAt} ms, failed attempts ${JSON.stringify(report.failedAttempts)}\n`);
    }
    if (report.joinedAt < 0) {
      report.joinedAt = j.seq;
      report.last = j.seq;
    }
    if (!lost) return;
    lost = false;
    if (!j.rec) {
      report.notRecovered += 1;
      if (DEBUG) process.stderr.write(`${user} not recovered: had ${JSON.stringify(lostAt)} (lost with ${lostCode}), joined ${j.ep}/${j.seq}\n`);
    }
    report.resumes += 1;
    if (firstAttemptAt !== undefined) report.resumeMs.push(Date.now() - firstAttemptAt);
    firstAttemptAt = undefined;
  });
  sub.on('event', (ev) => {
    report.received += 1;
    if (ev.seq !== report.last + 1) report.inOrder = false;
    report.last = ev.seq;
  });
  return sub.ready;
}

const send = (message: ClientsMessage) => process.send?.(message);

process.on('message', (command: ClientsCommand) => {
  switch (command.op) {
    case 'endpoints':
      endpoints = command.ports;
      send({ op: 'endpoints' });
      return;
    case 'start': {
      // Paced, as real clients arrive: thousands of connects in one turn overflow
      // accept queues and measure the kernel rather than the gateway.
      const gapMs = 1000 / command.connectsPerS;
      const joins = command.clients.map(
        (c, i) => new Promise<unknown>((resolve, reject) => setTimeout(() => startClient(c.user, c.session).then(resolve, reject), i * gapMs)),
      );
      void Promise.allSettled(joins).then((outcomes) => send({ op: 'joined', failed: outcomes.filter((o) => o.status === 'rejected').length }));
      return;
    }
    case 'report':
      send({ op: 'report', clients: reports });
      return;
    case 'close':
      void Promise.all(clients.map((c) => c.close())).then(() => process.exit(0));
      return;
  }
});
// The driving process went away (or was killed on a timeout): do not linger.
process.on('disconnect', () => process.exit(0));
