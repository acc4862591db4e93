/**
 * The primary thread: everything that happens once per instance. It owns the
 * engine (broker, presence, command journal), the session streams (continuity,
 * session-streams.ts), the routing table, the shard supervisor, readiness and the
 * shutdown choreography. It never touches a client socket: shards do, and ask the
 * primary through requests (requests.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { encodeServerFrame } from '../../protocol/codec.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Config } from '../config/schema.js';
import type { PublishRequest, PublishResult } from '../engine/broker.js';
import { createEngine, type Engine } from '../engine/engine.js';
import { AmqpIngress } from '../ingress/amqp-ingress.js';
import { AmqpCommandSink } from '../egress/amqp-command-sink.js';
import { CommandRelay } from '../egress/command-relay.js';
import { RelayLeadership } from '../egress/relay-leader.js';
import { AMQP_RELAY, createPostgresCursorStore } from '../engine/postgres-cursor-store.js';
import type { ShardToPrimary } from '../threads/messages.js';
import { AdminPlane } from '../admin/admin-plane.js';
import { TailHub, TAIL_ROUTE } from '../admin/session-tail.js';
import { Admissions } from './admissions.js';
import { ReplayBudgets } from './replay-budgets.js';
import { PresenceTracker } from './presence-tracker.js';
import { handleShardRequest } from './requests.js';
import { Router } from './router.js';
import { SessionStreams } from './session-streams.js';
import type { ShardLink } from './shard-link.js';
import { ShardDrainError, Supervisor } from './supervisor.js';

/** How often readiness follows the engine's health. */
const HEALTH_CHECK_MS = 1000;
/** How long start() waits for RabbitMQ before the daemon gives up. */
const AMQP_CONNECT_TIMEOUT_MS = 10_000;

/** A running instance. */
export class Primary {
  /** Random id of this process, unique across instances (presence owners carry it). */
  readonly instanceId = randomBytes(6).toString('hex');
  readonly engine: Engine;
  readonly router = new Router();
  readonly streams: SessionStreams;
  readonly presence: PresenceTracker;
  readonly supervisor: Supervisor;
  readonly admissions: Admissions;
  /** History replay bytes per user (replay-budgets.ts). */
  readonly replayBudgets: ReplayBudgets;
  /** Event ingress from RabbitMQ, when SHARDCAST_AMQP_URL is set. */
  readonly ingress: AmqpIngress | undefined;
  /** Relays journaled commands to RabbitMQ, when SHARDCAST_AMQP_URL is set. */
  readonly relay: CommandRelay | undefined;
  private readonly commandSink: AmqpCommandSink | undefined;
  /** With a shared (Postgres) journal, one instance relays: the holder of the relay lease. */
  private readonly leadership: RelayLeadership | undefined;
  private ready = false;
  private started = false;
  private draining = false;
  /** Connections the shards had to close at the drain deadline, still behind. */
  private drainForced = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private shutdownPromise: Promise<number> | undefined;
  /** Live tails of sessions (admin API); they hold a session's stream open like a shard. */
  readonly tails = new TailHub({
    open: (session) => {
      if (this.router.addInterest(session, TAIL_ROUTE)) this.streams.open(session);
    },
    close: (session) => {
      if (this.router.removeInterest(session, TAIL_ROUTE)) this.streams.close(session);
    },
  });
  /** The admin listener, metrics, audit trail and cluster registration (admin/admin-plane.ts). */
  readonly admin: AdminPlane;

  constructor(readonly config: Config, readonly log: Logger) {
    this.admissions = new Admissions(config.maxConnections, config.maxConnectionsPerUser);
    this.replayBudgets = new ReplayBudgets(config.replayBytesPerS, Math.max(config.replayBytesPerS, config.maxReplayBytes), config.maxReplayBytes);
    this.engine = createEngine(config, (session) => this.streams.has(session), { instanceId: this.instanceId, log });
    this.streams = new SessionStreams(
      this.engine.broker,
      {
        forward: (msg) => {
          const shards = this.router.shardsFor(msg.session);
          if (shards) for (const id of shards) this.supervisor.link(id)?.enqueue(msg);
          if (this.tails.size > 0) this.tails.forward(msg);
        },
        resync: (session, epoch, head) => {
          const shards = this.router.shardsFor(session);
          if (shards) for (const id of shards) this.supervisor.link(id)?.enqueueResync(session, epoch, head);
          if (this.tails.size > 0) this.tails.resync(session, epoch, head);
        },
      },
      { lingerMs: config.subscriptionLingerMs, checkMs: config.streamCheckMs, log, namespaceOf: (session) => namespaceFor(config, session).index },
    );
    this.presence = new PresenceTracker(this.engine.presence, {
      instanceId: this.instanceId,
      leaseMs: config.presenceLeaseMs,
      log,
      announce: (t, session, user) => this.announce(t, session, user),
      recount: (shard, incarnation) => this.supervisor.link(shard)?.send({ op: 'presence-report', incarnation }),
    });
    this.ingress =
      config.amqpUrl === undefined
        ? undefined
        : new AmqpIngress({
            url: config.amqpUrl,
            exchange: config.amqpExchange,
            partitions: config.amqpPartitions,
            prefetch: config.amqpPrefetch,
            deliveryLimit: config.amqpDeliveryLimit,
            limits: { maxPublishValues: config.maxPublishValues },
            instanceId: this.instanceId,
            log,
            sink: { publish: (events) => this.sequence(events), healthy: () => this.engine.health().ok },
            testExitAfterStore: config.testHooks,
          });
    if (config.amqpUrl !== undefined) {
      this.commandSink = new AmqpCommandSink({
        url: config.amqpUrl,
        exchange: config.amqpCommandsExchange,
        format: config.amqpCommandsFormat,
        namespacePrefixOf: (session) => namespaceFor(config, session).prefix,
        instanceId: this.instanceId,
        log,
      });
      const sql = this.engine.sql;
      this.relay = new CommandRelay(this.engine.journal, this.commandSink, {
        batch: 500,
        idleMs: 1000,
        retryMs: { min: 100, max: 5000 },
        log,
        ...(sql !== undefined ? { cursor: createPostgresCursorStore(sql, AMQP_RELAY, { schema: config.databaseSchema }) } : {}),
      });
      if (sql !== undefined) this.leadership = new RelayLeadership(sql, this.relay, { name: AMQP_RELAY, holder: this.instanceId, schema: config.databaseSchema, log });
    }
    this.admin = new AdminPlane(this, config, log);
    this.supervisor = new Supervisor(config, log, {
      onMessage: (link, msg) => this.onShardMessage(link, msg),
      onShardExit: (id, crashed) => this.onShardExit(id, crashed),
      onShardListening: (link) => {
        this.presence.shardStarted(link.id);
        link.send({ op: 'ready', ready: this.ready });
        if (this.started) this.log.info({ shard: link.id }, 'shard restarted');
      },
    }, this.admissions.userRates);
  }

  /** Starts the shards; resolves with the port once every shard listens. */
  async start(): Promise<number> {
    await this.engine.start({
      message: (msg) => this.streams.onMessage(msg),
      ownEvent: (msg) => this.streams.onOwnEvent(msg),
      resubscribed: () => this.streams.onResubscribed(),
    });
    this.presence.start();
    await this.ingress?.start(AMQP_CONNECT_TIMEOUT_MS);
    await this.commandSink?.start();
    // Per-instance journals each relay their own; a shared one relays from one instance.
    if (this.leadership !== undefined) this.leadership.start();
    else this.relay?.start();
    const port = await this.supervisor.start();
    const adminPort = await this.admin.start();
    this.started = true;
    this.updateReadiness();
    this.healthTimer = setInterval(() => this.updateReadiness(), HEALTH_CHECK_MS);
    this.healthTimer.unref();
    this.log.info(
      { port, host: this.config.host, adminPort, adminHost: this.config.adminHost, shards: this.config.shards, engine: this.engine.kind, instance: this.instanceId },
      'listening',
    );
    return port;
  }

  /**
   * Drains and stops: readiness off, shards stop accepting, send go-aways spread
   * over SHARDCAST_DRAIN_SPREAD_MS, flush buffers and close with 1001 (every
   * client closed within SHARDCAST_DRAIN_TIMEOUT_MS after the spread), then the
   * engine closes. Resolves with the exit code (0 when everything drained inside
   * the deadline). Idempotent.
   */
  shutdown(reason: string): Promise<number> {
    this.shutdownPromise ??= this.runShutdown(reason);
    return this.shutdownPromise;
  }

  private async runShutdown(reason: string): Promise<number> {
    const started = Date.now();
    const { drainSpreadMs, drainTimeoutMs } = this.config;
    const deadline = started + drainSpreadMs + drainTimeoutMs;
    this.log.info({ reason, drainSpreadMs, drainTimeoutMs }, 'draining');
    this.draining = true;
    clearInterval(this.healthTimer);
    this.updateReadiness();
    // Ingress first: no new events are taken while clients are being drained, and
    // the deliveries not stored go back to RabbitMQ for another instance.
    await this.ingress?.stop(deadline);
    await this.supervisor.drain(deadline, drainSpreadMs);
    // Shards are gone: commands recorded during the drain get their last chance to
    // leave (the relay stops after its pending delivery), then the streams and engine.
    this.relay?.notify();
    if (this.leadership !== undefined) await this.leadership.stop();
    else await this.relay?.stop();
    await this.commandSink?.close();
    this.streams.stop();
    this.presence.stop();
    await this.admin.beforeEngineStop();
    await this.engine.stop(Math.max(deadline, Date.now() + 1000));
    const tookMs = Date.now() - started;
    // Overran: past the deadline, or clients closed at it while still behind.
    const late = Date.now() > deadline + 1000 || this.drainForced > 0;
    this.log[late ? 'warn' : 'info']({ tookMs, late, forced: this.drainForced, streams: this.streams.counters }, 'stopped');
    // Last: /readyz answers 503 on it through the whole drain.
    await this.admin.stop();
    return late ? 1 : 0;
  }

  /** True while the instance takes traffic (/readyz). */
  get isReady(): boolean {
    return this.ready;
  }

  /** True once a drain of the instance started. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Drains one shard while the rest of the instance keeps serving (its clients get
   * go-aways spread over `spreadMs`, default SHARDCAST_DRAIN_SPREAD_MS, and are all
   * closed within `timeoutMs` after it, default SHARDCAST_DRAIN_TIMEOUT_MS). With
   * `restart` a fresh thread replaces it (resolving once it listens); without (the
   * admin API's drain), it stays out, and the last shard still serving is refused.
   * Throws ShardDrainError at once for an unknown shard, one already draining, the
   * last serving one, or while the instance drains.
   */
  drainShard(shard: number, opts: { spreadMs?: number; timeoutMs?: number; restart?: boolean } = {}): Promise<{ connections: number; forced: number }> {
    const restart = opts.restart ?? true;
    if (!restart && this.supervisor.link(shard) !== undefined && !this.supervisor.isDrainingShard(shard)) {
      const serving = [...this.supervisor.links()].filter((l) => !this.supervisor.isDrainingShard(l.id));
      if (serving.length <= 1) throw new ShardDrainError('last-shard', `shard ${shard} is the last shard taking connections: drain the instance instead`);
    }
    const spreadMs = opts.spreadMs ?? this.config.drainSpreadMs;
    const deadline = Date.now() + spreadMs + (opts.timeoutMs ?? this.config.drainTimeoutMs);
    const done = this.supervisor.drainShard(shard, deadline, spreadMs, restart);
    this.log.info({ shard, spreadMs, deadline, restart }, 'draining one shard');
    return done;
  }

  /** Ready while started, not draining, and the engine and ingress are healthy (Kubernetes stops routing otherwise). */
  private updateReadiness(): void {
    const engine = this.engine.health();
    const health = engine.ok && this.ingress !== undefined ? this.ingress.health() : engine;
    const ready = this.started && !this.draining && health.ok;
    if (ready === this.ready) return;
    this.ready = ready;
    if (!health.ok && !this.draining) this.log.warn({ detail: health.detail }, 'engine unhealthy: not ready');
    this.supervisor.broadcast({ op: 'ready', ready });
  }

  /**
   * Sequences upstream events (HTTP API, client `pub`, RabbitMQ) in call order, all
   * handed to the broker at once: the Redis broker pipelines them in one round trip.
   * One outcome per event. Conflation is the namespace's call: elsewhere the flag is
   * dropped and the frame is delivered like any other.
   */
  sequence(events: readonly PublishRequest[]): Promise<Array<PromiseSettledResult<PublishResult>>> {
    const started = performance.now();
    return Promise.allSettled(
      events.map((event) => {
        const allowed = !event.conflate || namespaceFor(this.config, event.session).conflate;
        return this.engine.broker.publish(allowed ? event : { ...event, conflate: undefined });
      }),
    ).then((outcomes) => {
      this.admin.metrics.observePublish((performance.now() - started) / 1000, outcomes);
      return outcomes;
    });
  }

  private onShardMessage(link: ShardLink, msg: ShardToPrimary): void {
    switch (msg.op) {
      case 'interest':
        if (this.router.addInterest(msg.session, link.id)) this.streams.open(msg.session);
        return;
      case 'uninterest':
        if (this.router.removeInterest(msg.session, link.id)) this.streams.close(msg.session);
        return;
      case 'release':
        this.admissions.release(msg.conn);
        return;
      case 'presence-join':
        void this.presence.join(msg.session, msg.user, link.id);
        return;
      case 'presence-leave':
        void this.presence.leave(msg.session, msg.user, link.id);
        return;
      case 'request':
        void handleShardRequest(this, link, msg);
        return;
      case 'drained':
        // Only the instance's drain decides the exit code (not a one-shard drain).
        if (this.draining) this.drainForced += msg.forced;
        return;
      case 'admin-reply':
        this.admin.queries.settle(msg);
        return;
      case 'listening':
      case 'listen-failed':
        return;
    }
  }

  /** Publishes a pjoin/pleave notice where the namespace wants them (they cost one frame per member per join). */
  private announce(t: 'pjoin' | 'pleave', session: string, user: string): void {
    if (!namespaceFor(this.config, session).joinLeave) return;
    this.engine.broker.notice(session, encodeServerFrame({ t, s: session, u: user })).catch((err: unknown) => {
      this.log.warn({ err, session }, 'presence notice not published');
    });
  }

  private onShardExit(id: number, crashed: boolean): void {
    void this.presence.shardGone(id);
    // A shard drained on its own (admin) is gone for good while the instance runs on:
    // forget it like a crashed one (its connections closed, its routes must go).
    if (!crashed && this.draining) return;
    this.admissions.dropShard(id);
    for (const session of this.router.dropShard(id)) this.streams.close(session);
  }
}
