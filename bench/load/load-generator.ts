/**
 * The load generator's main-thread side: a piscina pool of client threads, one task
 * per thread per run, each handed its share of the connections and a MessagePort for
 * control (stop, churn) and progress. Results are merged into one latency histogram
 * and one set of counts.
 *
 * piscina runs with `atomics: 'disabled'`: the tasks are I/O, and the default
 * 'sync' mode would freeze a thread's event loop between tasks.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ProtocolName } from './client-protocol.js';
import type { ClientTask, ClientTaskResult, WorkerCommand, WorkerReport } from './client-worker.js';
import { LatencyHistogram } from './latency-histogram.js';

/** The load one run puts on a target. */
export interface LoadPlan {
  host: string;
  port: number;
  /**
   * A target of several instances: the addresses clients connect to instead of
   * host:port. Client g = k + S·j (member j of session k, S sessions) connects to
   * endpoints[(k + j) mod E]: every session's members are dealt round-robin over the
   * instances (starting at a different one per session), and the clients as a whole
   * evenly (±1 per session). With one session, client g goes to endpoints[g mod E].
   */
  endpoints?: ReadonlyArray<{ host: string; port: number }>;
  protocol: ProtocolName;
  clients: number;
  /** Client g joins sessions[g % sessions.length]. */
  sessions: string[];
  /** Warm-up events first (payload indices 0 … warmup-1), kept out of the results; default 0. */
  warmup?: number;
  /** Measured events each client expects (payload indices warmup … warmup+events-1). */
  events: number;
  /** Source addresses used (127.0.0.2 …); default 32. */
  localAddresses?: number;
  /** Handshakes in flight per thread; default 128. */
  connectConcurrency?: number;
  /** Per-client connect-and-join deadline; default 30 s. */
  connectTimeoutMs?: number;
  /** Heartbeat period per client; default none. */
  heartbeatMs?: number;
}

/** Progress summed over the threads. */
export interface LoadProgress {
  joined: number;
  failed: number;
  delivered: number;
  warmupDelivered: number;
  churnCycles: number;
}

/** Merged outcome of a run. */
export interface LoadResult extends Omit<ClientTaskResult, 'histogram'> {
  histogram: LatencyHistogram;
}

function workerFilename(): string {
  // Built: dist/bench/load/client-worker.js next to this file. From TypeScript
  // sources (tests), the build output is used, as workers do not inherit a TS loader.
  const sibling = fileURLToPath(new URL('./client-worker.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL('../../dist/bench/load/client-worker.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`load generator: ${built} is missing; run \`npm run build\` first`);
}

/** A pool of client threads. */
export class LoadGenerator {
  readonly threads: number;
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.threads = Math.max(1, threads);
    this.pool = new Piscina({
      filename: workerFilename(),
      minThreads: this.threads,
      maxThreads: this.threads,
      atomics: 'disabled',
      idleTimeout: 60_000,
    });
  }

  /** Opens the plan's connections across the threads; see LoadRun. */
  start(plan: LoadPlan): LoadRun {
    return new LoadRun(this.pool, this.threads, plan);
  }

  /** Ends the client threads (no sockets are live between runs). */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** One run in progress. */
export class LoadRun {
  /** Resolves when every thread has connected (or failed) all its clients. */
  readonly ready: Promise<{ joined: number; failed: number; firstError?: string }>;
  private readonly ports: MessagePort[] = [];
  private readonly progressByThread: LoadProgress[] = [];
  private readonly results: Promise<ClientTaskResult[]>;

  constructor(pool: Piscina, threads: number, plan: LoadPlan) {
    const tasks: Promise<ClientTaskResult>[] = [];
    const readies: Promise<{ joined: number; failed: number; firstError?: string }>[] = [];
    const workers = Math.min(threads, Math.max(1, plan.clients));
    let first = 0;
    for (let w = 0; w < workers; w++) {
      const count = Math.floor(plan.clients / workers) + (w < plan.clients % workers ? 1 : 0);
      const { port1, port2 } = new MessageChannel();
      this.ports.push(port1);
      const progress: LoadProgress = { joined: 0, failed: 0, delivered: 0, warmupDelivered: 0, churnCycles: 0 };
      this.progressByThread.push(progress);
      readies.push(
        new Promise((resolve) => {
          port1.on('message', (report: WorkerReport) => {
            if (report.type === 'progress') Object.assign(progress, report);
            else if (report.type === 'ready') {
              progress.joined = report.joined;
              progress.failed = report.failed;
              resolve(report);
            }
          });
        }),
      );
      const task: ClientTask = {
        port: port2,
        host: plan.host,
        targetPort: plan.port,
        endpoints: plan.endpoints && plan.endpoints.length > 0 ? plan.endpoints.map(({ host, port }) => ({ host, port })) : undefined,
        protocol: plan.protocol,
        firstClient: first,
        clients: count,
        sessions: plan.sessions,
        warmup: plan.warmup ?? 0,
        events: plan.events,
        localAddresses: plan.localAddresses ?? 32,
        connectConcurrency: plan.connectConcurrency ?? 128,
        connectTimeoutMs: plan.connectTimeoutMs ?? 30_000,
        heartbeatMs: plan.heartbeatMs ?? 0,
        userPrefix: `b${Date.now().toString(36)}-`,
      };
      first += count;
      tasks.push(pool.run(task, { transferList: [port2] }) as Promise<ClientTaskResult>);
    }
    this.results = Promise.all(tasks);
    // A task that throws must not leave `ready` pending forever.
    this.ready = Promise.race([
      Promise.all(readies).then((all) => ({
        joined: all.reduce((n, r) => n + r.joined, 0),
        failed: all.reduce((n, r) => n + r.failed, 0),
        firstError: all.find((r) => r.firstError)?.firstError,
      })),
      this.results.then(() => {
        throw new Error('load generator: a client thread ended before it was ready');
      }),
    ]);
  }

  /** Latest progress summed over the threads (reported every 200 ms). */
  progress(): LoadProgress {
    const sum: LoadProgress = { joined: 0, failed: 0, delivered: 0, warmupDelivered: 0, churnCycles: 0 };
    for (const p of this.progressByThread) {
      sum.joined += p.joined;
      sum.failed += p.failed;
      sum.delivered += p.delivered;
      sum.warmupDelivered += p.warmupDelivered;
      sum.churnCycles += p.churnCycles;
    }
    return sum;
  }

  /** Starts churn on every thread: `concurrency` cycling connections per thread. */
  churn(concurrency: number, holdMinMs: number, holdMaxMs: number): void {
    this.send({ type: 'churn', concurrency, holdMinMs, holdMaxMs });
  }

  /** Resolves when `predicate(progress)` holds, or false after `timeoutMs`. */
  async waitFor(predicate: (p: LoadProgress) => boolean, timeoutMs: number, pollMs = 20): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (predicate(this.progress())) return true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return predicate(this.progress());
  }

  /** Stops every thread, closes the clients, and merges what they counted. */
  async stop(): Promise<LoadResult> {
    this.send({ type: 'stop' });
    const results = await this.results;
    const histogram = new LatencyHistogram();
    const merged: LoadResult = {
      histogram,
      joined: 0,
      failed: 0,
      delivered: 0,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
      closedEarly: 0,
      firstReceiptUs: 0,
      lastReceiptUs: 0,
      connectMs: 0,
      churnCycles: 0,
      churnFailures: 0,
      churnFrames: 0,
    };
    for (const r of results) {
      histogram.merge(r.histogram);
      merged.joined += r.joined;
      merged.failed += r.failed;
      merged.firstError ??= r.firstError;
      merged.delivered += r.delivered;
      merged.lost += r.lost;
      merged.duplicated += r.duplicated;
      merged.unexpected += r.unexpected;
      merged.closedEarly += r.closedEarly;
      if (r.firstReceiptUs > 0 && (merged.firstReceiptUs === 0 || r.firstReceiptUs < merged.firstReceiptUs)) {
        merged.firstReceiptUs = r.firstReceiptUs;
      }
      merged.lastReceiptUs = Math.max(merged.lastReceiptUs, r.lastReceiptUs);
      merged.connectMs = Math.max(merged.connectMs, r.connectMs);
      merged.churnCycles += r.churnCycles;
      merged.churnFailures += r.churnFailures;
      merged.churnFrames += r.churnFrames;
    }
    for (const port of this.ports) port.close();
    return merged;
  }

  private send(command: WorkerCommand): void {
    for (const port of this.ports) port.postMessage(command);
  }
}
