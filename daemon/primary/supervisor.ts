/**
 * Shard supervision (primary thread). Starts one worker thread per shard — the
 * first on the configured port (0 = kernel's choice), the rest on the port it got,
 * all sharing it with SO_REUSEPORT — restarts a shard that dies with jittered
 * backoff, and runs the shards' part of the shutdown. Not piscina: its pool
 * terminate()s threads, which aborts a process with live uWS sockets
 * (docs/architecture.md, "Facts about this uWS build").
 * Threads are never terminate()d here either: a shard ends by closing its App and
 * letting its event loop empty.
 */
import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { PrimaryToShard, ShardInit, ShardToPrimary } from '../threads/messages.js';
import { ShardLink } from './shard-link.js';

/** What the supervisor tells its owner. */
export interface SupervisorHooks {
  /** A message from a shard (other than the listening handshake). */
  onMessage(link: ShardLink, msg: ShardToPrimary): void;
  /** A shard thread ended; `crashed` unless it was asked to drain. */
  onShardExit(id: number, crashed: boolean): void;
  /** A shard listens (at start and after each restart). */
  onShardListening(link: ShardLink): void;
}

const WORKER_URL = new URL('../shard/worker.js', import.meta.url);
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5000;
/** A shard that stayed up this long is considered healthy again. */
const HEALTHY_AFTER_MS = 30_000;

/** Thrown by drainShard when the shard cannot be drained now (unknown, already draining, instance draining). */
export class ShardDrainError extends Error {
  readonly code = 'SHARD_DRAIN_REFUSED';
  constructor(
    /** Why: the admin API answers each with its own status. */
    readonly reason: 'not-live' | 'already-draining' | 'instance-draining' | 'last-shard',
    message: string,
  ) {
    super(message);
  }
}

/** Thrown when the shards cannot listen (port taken, bad host). */
export class ListenError extends Error {
  readonly code = 'LISTEN_FAILED';
}

/** Owns the shard threads; see the header comment. */
export class Supervisor {
  private readonly live = new Map<number, ShardLink>();
  private readonly startedAt = new Map<number, number>();
  private readonly failures = new Map<number, number>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private port = 0;
  private draining = false;
  /** Shards being drained one at a time (drainShard): their exit is not a crash. */
  private readonly drainingShards = new Set<number>();
  private exitWaiters: Array<() => void> = [];

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly hooks: SupervisorHooks,
    /** Per-user frame counters every shard shares (owned by the primary's admissions). */
    private readonly userRates: SharedArrayBuffer,
  ) {}

  /** The port all shards listen on (after start()). */
  get listenPort(): number {
    return this.port;
  }

  /** Live shard links. */
  links(): IterableIterator<ShardLink> {
    return this.live.values();
  }

  /** The link of a shard, when it is live. */
  link(id: number): ShardLink | undefined {
    return this.live.get(id);
  }

  /** Starts every shard; resolves with the port once all listen. */
  async start(): Promise<number> {
    // uSockets sets SO_REUSEPORT only for a non-zero port, so shards cannot share a
    // kernel-chosen port: for port 0 we pick a free one first, then all bind it.
    const port = this.config.port === 0 ? await freePort(this.config.host) : this.config.port;
    // uWS binds with SO_REUSEPORT, so a port another process holds the same way is
    // taken silently and its traffic split between the two: check first.
    if (this.config.port !== 0) await assertPortFree(this.config.host, port);
    this.port = await this.spawnAndListen(0, port);
    await Promise.all(
      Array.from({ length: this.config.shards - 1 }, (_, i) => this.spawnAndListen(i + 1, this.port)),
    );
    return this.port;
  }

  /** Sends a control message to every live shard. */
  broadcast(msg: PrimaryToShard): void {
    for (const link of this.live.values()) link.send(msg);
  }

  /**
   * Asks every shard to drain: go-aways spread over `spreadMs`, every connection
   * closed by `deadline`. Resolves when all threads ended.
   */
  async drain(deadline: number, spreadMs: number): Promise<void> {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    this.broadcast({ op: 'drain', deadline, spreadMs, goAwayMaxDelayMs: this.config.goAwayMaxDelayMs, reason: 'server shutting down' });
    while (this.live.size > 0) await new Promise<void>((resolve) => this.exitWaiters.push(resolve));
  }

  /**
   * Drains one shard while the others keep serving: its listen socket closes (the
   * kernel places new connections on the other shards), its clients get go-aways
   * spread over `spreadMs` and are closed by `deadline`, and its thread ends. With
   * `restart`, a fresh thread then takes its place on the shared port (resolving once
   * it listens); without, the shard stays out until the process restarts (an
   * operator's drain). Throws ShardDrainError at once when the shard is not live,
   * already draining, or the instance drains.
   */
  drainShard(id: number, deadline: number, spreadMs: number, restart: boolean): Promise<{ connections: number; forced: number }> {
    const link = this.live.get(id);
    if (this.draining) throw new ShardDrainError('instance-draining', 'the instance is draining');
    if (link === undefined) throw new ShardDrainError('not-live', `shard ${id} is not running (shards: 0–${this.config.shards - 1}; one drained by an operator stays out until a restart)`);
    if (this.drainingShards.has(id)) throw new ShardDrainError('already-draining', `shard ${id} is already draining`);
    this.drainingShards.add(id);
    return this.runShardDrain(link, id, deadline, spreadMs, restart).finally(() => this.drainingShards.delete(id));
  }

  /** True while shard `id` is being drained on its own. */
  isDrainingShard(id: number): boolean {
    return this.drainingShards.has(id);
  }

  private async runShardDrain(link: ShardLink, id: number, deadline: number, spreadMs: number, restart: boolean): Promise<{ connections: number; forced: number }> {
    const drained = new Promise<{ connections: number; forced: number }>((resolve) => {
      const onMessage = (msg: ShardToPrimary) => {
        if (msg.op !== 'drained') return;
        link.worker.off('message', onMessage);
        resolve({ connections: msg.connections, forced: msg.forced });
      };
      link.worker.on('message', onMessage);
      // A thread that dies before reporting drained nothing more.
      link.worker.once('exit', () => resolve({ connections: 0, forced: 0 }));
    });
    const exited = new Promise<void>((resolve) => link.worker.once('exit', () => resolve()));
    link.send({ op: 'drain', deadline, spreadMs, goAwayMaxDelayMs: this.config.goAwayMaxDelayMs, reason: 'shard drain' });
    const outcome = await drained;
    await exited;
    if (restart && !this.draining) await this.spawnAndListen(id, this.port);
    return outcome;
  }

  private spawnAndListen(id: number, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const link = this.spawn(id, port);
      const onMessage = (msg: ShardToPrimary) => {
        if (msg.op === 'listening') {
          link.worker.off('message', onMessage);
          resolve(msg.port);
        } else if (msg.op === 'listen-failed') {
          link.worker.off('message', onMessage);
          reject(new ListenError(msg.message));
        }
      };
      link.worker.on('message', onMessage);
      link.worker.once('exit', (code) => reject(new ListenError(`shard ${id} exited with code ${code} before listening`)));
    });
  }

  private spawn(id: number, port: number): ShardLink {
    const init: ShardInit = { shardId: id, port, userRates: this.userRates };
    const worker = new Worker(WORKER_URL, {
      workerData: { init, config: this.config },
      name: `shard-${id}`,
      // The young generation otherwise grows to tens of MB per shard during a
      // connection storm and stays: a small cap halves memory per idle connection
      // at no measured CPU cost (bench/RESULTS.md).
      resourceLimits: this.config.shardYoungGenerationMb > 0 ? { maxYoungGenerationSizeMb: this.config.shardYoungGenerationMb } : undefined,
    });
    const link = new ShardLink(id, worker);
    this.live.set(id, link);
    this.startedAt.set(id, Date.now());
    worker.on('message', (msg: ShardToPrimary) => {
      if (msg.op === 'listening') {
        link.listening = true;
        this.hooks.onShardListening(link);
      } else if (msg.op !== 'listen-failed') {
        this.hooks.onMessage(link, msg);
      }
    });
    worker.on('error', (err) => this.log.error({ err, shard: id }, 'shard thread error'));
    worker.on('exit', (code) => this.onExit(link, code));
    return link;
  }

  private onExit(link: ShardLink, code: number): void {
    if (this.live.get(link.id) === link) this.live.delete(link.id);
    const crashed = !this.draining && !this.drainingShards.has(link.id);
    this.hooks.onShardExit(link.id, crashed);
    for (const wake of this.exitWaiters.splice(0)) wake();
    if (!crashed) {
      this.log.info({ shard: link.id, code }, 'shard stopped');
      return;
    }
    if (!link.listening) {
      // It never listened: a restart loop would spin on the same failure.
      this.log.error({ shard: link.id, code }, 'shard exited before listening; not restarting');
      return;
    }
    const uptime = Date.now() - (this.startedAt.get(link.id) ?? 0);
    const failures = uptime > HEALTHY_AFTER_MS ? 1 : (this.failures.get(link.id) ?? 0) + 1;
    this.failures.set(link.id, failures);
    const cap = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (failures - 1));
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.log.error({ shard: link.id, code, failures, restartInMs: delay }, 'shard crashed; restarting');
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.draining) return;
      this.spawn(link.id, this.port);
    }, delay);
    this.restartTimers.add(timer);
  }
}

/** Asks the kernel for a free TCP port on `host`. */
/** Rejects with a ListenError when `port` is held by another socket (bound without SO_REUSEPORT, any holder makes it fail). */
function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new ListenError(`port ${port} on ${host} is already in use by another process; stop it or set SHARDCAST_PORT to a free port (sharing it would split the traffic between the two)`)
          : new ListenError(`cannot listen on ${host}:${port}: ${err.message}`),
      );
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
