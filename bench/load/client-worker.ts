/**
 * The piscina task run by each load-generator thread: it opens its share of client
 * connections, joins each to its session, reports `ready`, then counts what arrives
 * — per client and per event index — until the main thread says `stop`; optionally
 * it runs a connect/join/leave/disconnect churn meanwhile. It returns its latency
 * histogram and the delivered / lost / duplicated counts.
 *
 * Threading: one task per thread at a time (piscina's default), all state lives in
 * the task's closure; the MessagePort carries control in and progress out.
 */
import type { MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { WsClient } from './ws-client.js';
import { clientProtocol, type ClientProtocol, type ProtocolLink, type ProtocolName } from './client-protocol.js';
import { findPayload, nowUs, type ParsedPayload } from './payload.js';
import { LatencyHistogram } from './latency-histogram.js';

/** What one worker is asked to do. */
export interface ClientTask {
  port: MessagePort;
  host: string;
  targetPort: number;
  /** Several instances: client g connects to endpointFor(task, g) instead of host:targetPort (LoadPlan.endpoints). */
  endpoints?: Array<{ host: string; port: number }>;
  protocol: ProtocolName;
  /** Global index of this worker's first client (names, sessions and source addresses derive from it). */
  firstClient: number;
  clients: number;
  /** Client g joins sessions[g % sessions.length]. */
  sessions: string[];
  /** Warm-up events, payload indices 0 … warmup-1: counted apart, never in the results. */
  warmup: number;
  /** Measured events each client expects, payload indices warmup … warmup+events-1. */
  events: number;
  /** Connections are spread over 127.0.0.2 … 127.0.0.(1+localAddresses). */
  localAddresses: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  /** Heartbeat period per client in ms; 0 for none. */
  heartbeatMs: number;
  /** Prefix of user names, unique per run. */
  userPrefix: string;
}

/** Control messages from the main thread. */
export type WorkerCommand =
  | { type: 'stop' }
  | { type: 'churn'; concurrency: number; holdMinMs: number; holdMaxMs: number };

/** Messages to the main thread. */
export type WorkerReport =
  | { type: 'progress'; joined: number; failed: number; delivered: number; warmupDelivered: number; churnCycles: number }
  | { type: 'ready'; joined: number; failed: number; firstError?: string };

/** What a task returns. */
export interface ClientTaskResult {
  histogram: { counts: number[]; max: number };
  joined: number;
  failed: number;
  firstError?: string;
  /** Unique (client, event) receipts. */
  delivered: number;
  /** (client, event) pairs never received. */
  lost: number;
  /** Receipts beyond the first of the same (client, event). */
  duplicated: number;
  /** Payloads with an index outside 0 … events-1. */
  unexpected: number;
  /** Clients the server closed before the stop. */
  closedEarly: number;
  /** Monotonic µs of the first and last receipt (0 when none). */
  firstReceiptUs: number;
  lastReceiptUs: number;
  /** Time from the first connect to the last join, ms. */
  connectMs: number;
  churnCycles: number;
  churnFailures: number;
  churnFrames: number;
}

// performance.now() is cheap; its offset to the process-wide clock is fixed per thread.
const clockOffsetUs = nowUs() - performance.now() * 1000;
const fastNowUs = (): number => performance.now() * 1000 + clockOffsetUs;

/** Where client g connects: see LoadPlan.endpoints. */
export function endpointFor(task: Pick<ClientTask, 'host' | 'targetPort' | 'endpoints' | 'sessions'>, g: number): { host: string; port: number } {
  const endpoints = task.endpoints;
  if (!endpoints || endpoints.length === 0) return { host: task.host, port: task.targetPort };
  const s = task.sessions.length;
  return endpoints[((g % s) + Math.floor(g / s)) % endpoints.length];
}

interface StableClient {
  ws: WsClient | null;
  link: ProtocolLink;
  received: Uint8Array;
  joined: boolean;
  done: boolean;
  stopping: boolean;
}

/** Runs one worker's share of the load; resolves after `stop`. */
export default async function runClientTask(task: ClientTask): Promise<ClientTaskResult> {
  const protocol = clientProtocol(task.protocol);
  const histogram = new LatencyHistogram();
  const parsed: ParsedPayload = { index: -1, t0us: 0 };
  const stats = {
    joined: 0,
    failed: 0,
    firstError: undefined as string | undefined,
    delivered: 0,
    warmupDelivered: 0,
    duplicated: 0,
    unexpected: 0,
    closedEarly: 0,
    firstReceiptUs: 0,
    lastReceiptUs: 0,
    churnCycles: 0,
    churnFailures: 0,
    churnFrames: 0,
  };
  const clients: StableClient[] = [];
  let stopping = false;
  let churn: Promise<void> | null = null;

  const fail = (reason: string): void => {
    stats.failed++;
    stats.firstError ??= reason;
  };

  const onEvent = (client: StableClient): void => {
    if (parsed.index < task.warmup) {
      stats.warmupDelivered++;
      return;
    }
    const index = parsed.index - task.warmup;
    if (index >= task.events) {
      stats.unexpected++;
      return;
    }
    const seen = client.received[index];
    if (seen === 0) {
      const now = fastNowUs();
      stats.delivered++;
      histogram.record(now - parsed.t0us);
      if (stats.firstReceiptUs === 0) stats.firstReceiptUs = now;
      stats.lastReceiptUs = now;
    } else {
      stats.duplicated++;
    }
    if (seen < 255) client.received[index] = seen + 1;
  };

  const openStable = (g: number): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean, reason?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ok) {
          stats.joined++;
          client.joined = true;
        } else {
          fail(reason ?? 'failed');
          client.done = true;
          client.ws?.destroy();
        }
        resolve();
      };
      const client: StableClient = {
        ws: null,
        received: new Uint8Array(task.events),
        joined: false,
        done: false,
        stopping: false,
        link: {
          session: task.sessions[g % task.sessions.length],
          user: `${task.userPrefix}${g}`,
          send: (data) => client.ws?.send(data),
          joined: () => settle(true),
          left: () => undefined,
          failed: (reason) => settle(false, reason),
        },
      };
      clients.push(client);
      const timer = setTimeout(() => settle(false, `no join within ${task.connectTimeoutMs} ms`), task.connectTimeoutMs);
      const endpoint = endpointFor(task, g);
      client.ws = new WsClient(
        {
          host: endpoint.host,
          port: endpoint.port,
          path: protocol.path(client.link.user),
          subprotocol: protocol.subprotocol,
          localAddress: `127.0.0.${2 + (g % task.localAddresses)}`,
        },
        {
          onOpen: () => protocol.onOpen(client.link),
          onMessage: (opcode, payload) => {
            if (findPayload(payload, parsed)) onEvent(client);
            else protocol.onControl(client.link, opcode, payload);
          },
          onClose: (code, error) => {
            if (!settled) settle(false, error ? error.message : `closed ${code} before joining`);
            else if (!stopping && !client.done) stats.closedEarly++;
            client.done = true;
          },
        },
      );
    });

  const report = (): void => {
    task.port.postMessage({
      type: 'progress',
      joined: stats.joined,
      failed: stats.failed,
      delivered: stats.delivered,
      warmupDelivered: stats.warmupDelivered,
      churnCycles: stats.churnCycles,
    } satisfies WorkerReport);
  };
  const progressTimer = setInterval(report, 200);

  const stopped = new Promise<void>((resolve) => {
    task.port.on('message', (command: WorkerCommand) => {
      if (command.type === 'stop') {
        stopping = true;
        resolve();
      } else if (command.type === 'churn') {
        churn = runChurn(task, protocol, command, stats, () => stopping);
      }
    });
  });

  // Connect phase: a bounded number of handshakes in flight.
  const connectStart = performance.now();
  let next = 0;
  const lanes: Promise<void>[] = [];
  for (let lane = 0; lane < Math.min(task.connectConcurrency, task.clients); lane++) {
    lanes.push(
      (async () => {
        while (next < task.clients && !stopping) {
          const g = task.firstClient + next++;
          await openStable(g);
        }
      })(),
    );
  }
  await Promise.all(lanes);
  const connectMs = performance.now() - connectStart;
  task.port.postMessage({
    type: 'ready',
    joined: stats.joined,
    failed: stats.failed,
    firstError: stats.firstError,
  } satisfies WorkerReport);

  let heartbeatTimer: NodeJS.Timeout | undefined;
  if (task.heartbeatMs > 0) {
    // Spread heartbeats: each tick serves a tenth of the clients.
    let cursor = 0;
    heartbeatTimer = setInterval(() => {
      const slice = Math.ceil(clients.length / 10);
      for (let k = 0; k < slice && clients.length > 0; k++) {
        const client = clients[cursor++ % clients.length];
        if (client.joined && !client.done) protocol.heartbeat(client.link);
      }
    }, task.heartbeatMs / 10);
  }

  await stopped;
  if (heartbeatTimer) clearInterval(heartbeatTimer);
  if (churn) await churn;

  let lost = 0;
  for (const client of clients) {
    if (!client.joined) continue;
    for (let i = 0; i < task.events; i++) if (client.received[i] === 0) lost++;
  }

  await closeAll(clients);
  clearInterval(progressTimer);
  report();
  task.port.close();

  return {
    histogram: histogram.toJSON(),
    joined: stats.joined,
    failed: stats.failed,
    firstError: stats.firstError,
    delivered: stats.delivered,
    lost,
    duplicated: stats.duplicated,
    unexpected: stats.unexpected,
    closedEarly: stats.closedEarly,
    firstReceiptUs: stats.firstReceiptUs,
    lastReceiptUs: stats.lastReceiptUs,
    connectMs,
    churnCycles: stats.churnCycles,
    churnFailures: stats.churnFailures,
    churnFrames: stats.churnFrames,
  };
}

/** Closes every client and waits (bounded) for the sockets to end. */
async function closeAll(clients: StableClient[]): Promise<void> {
  const open = clients.filter((c) => !c.done && c.ws);
  if (open.length === 0) return;
  await new Promise<void>((resolve) => {
    let remaining = open.length;
    const deadline = setTimeout(resolve, 5000);
    const poll = setInterval(() => {
      remaining = open.filter((c) => !c.done).length;
      if (remaining === 0) {
        clearInterval(poll);
        clearTimeout(deadline);
        resolve();
      }
    }, 50);
    deadline.unref();
    for (const client of open) client.ws?.close(1000);
  });
  for (const client of open) if (!client.done) client.ws?.destroy();
}

/**
 * Churn: `concurrency` loops, each connecting a fresh client, joining a random
 * session, staying a random while, leaving, disconnecting — until stop.
 */
async function runChurn(
  task: ClientTask,
  protocol: ClientProtocol,
  command: { concurrency: number; holdMinMs: number; holdMaxMs: number },
  stats: { churnCycles: number; churnFailures: number; churnFrames: number },
  isStopping: () => boolean,
): Promise<void> {
  let serial = 0;
  const parsed: ParsedPayload = { index: -1, t0us: 0 };
  const cycle = (): Promise<boolean> =>
    new Promise((resolve) => {
      const n = serial++;
      const session = task.sessions[Math.floor(Math.random() * task.sessions.length)];
      let ws: WsClient | null = null;
      let phase: 'joining' | 'holding' | 'leaving' | 'closing' = 'joining';
      let finished = false;
      const finish = (ok: boolean): void => {
        if (finished) return;
        finished = true;
        clearTimeout(guard);
        resolve(ok);
      };
      const guard = setTimeout(() => {
        ws?.destroy();
        finish(false);
      }, task.connectTimeoutMs + command.holdMaxMs + 5000);
      const leaveNow = (): void => {
        if (phase !== 'holding') return;
        phase = 'leaving';
        protocol.leave(link);
      };
      const link: ProtocolLink = {
        session,
        user: `${task.userPrefix}churn-${task.firstClient}-${n}`,
        send: (data) => ws?.send(data),
        joined: () => {
          if (phase !== 'joining') return;
          phase = 'holding';
          const hold = command.holdMinMs + Math.random() * (command.holdMaxMs - command.holdMinMs);
          setTimeout(leaveNow, hold);
        },
        left: () => {
          if (phase !== 'leaving') return;
          phase = 'closing';
          ws?.close(1000);
        },
        failed: () => {
          ws?.destroy();
          finish(false);
        },
      };
      const endpoint = task.endpoints && task.endpoints.length > 0 ? task.endpoints[(task.firstClient + n) % task.endpoints.length] : { host: task.host, port: task.targetPort };
      ws = new WsClient(
        {
          host: endpoint.host,
          port: endpoint.port,
          path: protocol.path(link.user),
          subprotocol: protocol.subprotocol,
          localAddress: `127.0.0.${2 + ((task.firstClient + n) % task.localAddresses)}`,
        },
        {
          onOpen: () => protocol.onOpen(link),
          onMessage: (opcode, payload) => {
            if (findPayload(payload, parsed)) stats.churnFrames++;
            else protocol.onControl(link, opcode, payload);
          },
          onClose: () => finish(phase === 'closing'),
        },
      );
    });
  const loops: Promise<void>[] = [];
  for (let i = 0; i < command.concurrency; i++) {
    loops.push(
      (async () => {
        while (!isStopping()) {
          if (await cycle()) stats.churnCycles++;
          else stats.churnFailures++;
        }
      })(),
    );
  }
  await Promise.all(loops);
}
