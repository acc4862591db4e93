/**
 * Everything of the admin side one instance owns, on the primary thread: the admin
 * listener (admin-server.ts) with its API (admin-api.ts), the metrics registry, the
 * queries to shards, the audit trail and, with Redis, the cluster registration.
 * Lifecycle: start() after the shards listen; beforeEngineStop() in the drain (the
 * cluster entry needs Redis); stop() last of all, so /readyz answers 503 until the
 * listener closes.
 */
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { namespaceFor, namespaceLabels } from '../config/namespaces.js';
import type { Primary } from '../primary/primary.js';
import { ShardDrainError } from '../primary/supervisor.js';
import { adminRouter, type AdminContext } from './admin-api.js';
import { AdminError, AdminServer } from './admin-server.js';
import { AuditTrail } from './audit.js';
import { ClusterRegistry } from './cluster-registry.js';
import { InstanceMetrics } from './metrics.js';
import { JournalHeadProbe } from './journal-head.js';
import { ShardQueryClient } from './shard-queries.js';
import { daemonVersion } from './version.js';

/**
 * The address other machines reach the admin listener at: the bound host, or for a
 * wildcard bind (0.0.0.0, ::) this machine's first non-loopback IPv4 address (in
 * Kubernetes, the pod IP).
 */
export function advertisedHost(bound: string): string {
  if (bound !== '0.0.0.0' && bound !== '::' && bound !== '') return bound.includes(':') ? `[${bound}]` : bound;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Longest a Redis PING for the round-trip metric may take before it is reported as missing. */
const REDIS_PING_TIMEOUT_MS = 1000;
/** Longest a scrape waits for the command journal's head (Postgres: one `max(pos)`). */
const JOURNAL_HEAD_TIMEOUT_MS = 1000;

/** The admin side of an instance; see the header comment. */
export class AdminPlane {
  readonly metrics = new InstanceMetrics();
  readonly queries = new ShardQueryClient();
  private readonly server: AdminServer;
  private cluster: ClusterRegistry | undefined;
  private startedAt = Date.now();
  /** Set when the admin API asked for a drain: not ready from that moment, before the signal arrives. */
  private drainRequested = false;

  constructor(private readonly primary: Primary, private readonly config: Config, private readonly log: Logger) {
    this.server = new AdminServer({
      host: config.adminHost,
      port: config.adminPort,
      token: config.adminToken,
      log,
      ready: () => primary.isReady && !this.drainRequested,
      router: adminRouter(this.context()),
    });
  }

  /** Listens on the admin address and registers the instance; resolves with the admin port. */
  async start(): Promise<number> {
    this.startedAt = Date.now();
    const port = await this.server.start();
    const redis = this.primary.engine.redis;
    if (redis !== undefined) {
      const version = daemonVersion();
      const startedAt = new Date(this.startedAt).toISOString();
      this.cluster = new ClusterRegistry(
        redis,
        this.config.redisPrefix,
        () => ({ instance: this.primary.instanceId, admin: `${advertisedHost(this.config.adminHost)}:${port}`, version, startedAt, draining: this.primary.isDraining }),
        this.log,
      );
      this.cluster.start();
    }
    return port;
  }

  /** Leaves the cluster registry (while Redis is still there) and fails pending shard queries. */
  async beforeEngineStop(): Promise<void> {
    this.queries.close();
    await this.cluster?.stop();
    this.cluster = undefined;
  }

  /** Closes the admin listener. */
  async stop(): Promise<void> {
    this.queries.close();
    await this.server.stop();
  }

  private context(): AdminContext {
    const p = this.primary;
    const config = this.config;
    const journalHead = new JournalHeadProbe(p.engine.journal, JOURNAL_HEAD_TIMEOUT_MS, this.log);
    return {
      log: this.log,
      instanceId: p.instanceId,
      version: daemonVersion(),
      engineKind: p.engine.kind,
      startedAt: () => this.startedAt,
      port: () => p.supervisor.listenPort,
      configuredShards: config.shards,
      ready: () => p.isReady && !this.drainRequested,
      draining: () => p.isDraining || this.drainRequested,
      links: () => p.supervisor.links(),
      queries: this.queries,
      admittedConnections: () => p.admissions.connections,
      streamedSessions: () => p.router.size,
      streamCounters: () => p.streams.counters,
      position: (session) => p.engine.broker.position(session),
      presence: (session, max) => p.presence.list(session, Math.max(1, max)),
      historySize: (session) => namespaceFor(config, session).historySize,
      drainInstance: () => {
        this.drainRequested = true;
        // The very path SIGTERM takes (daemon/main.ts), so the process exits after it.
        process.kill(process.pid, 'SIGTERM');
      },
      drainShard: (shard) => {
        let done;
        try {
          done = p.drainShard(shard, { restart: false });
        } catch (err) {
          if (!(err instanceof ShardDrainError)) throw err;
          if (err.reason === 'not-live') throw new AdminError(404, 'unknown_shard', `shard ${shard} is not running on this instance (shards are 0..${config.shards - 1}; a drained one is not restarted)`);
          if (err.reason === 'last-shard') throw new AdminError(409, 'last_shard', err.message);
          throw new AdminError(409, 'already_draining', err.message);
        }
        done.then(
          (outcome) => this.log.info({ shard, ...outcome }, 'shard drained (admin)'),
          (err: unknown) => this.log.error({ err, shard }, 'draining a shard failed'),
        );
      },
      amqpCounters: () => p.ingress?.counters,
      relayPosition: () => (p.relay?.running ? p.relay.cursor : undefined),
      journalHead: () => journalHead.read(),
      namespaceLabels: namespaceLabels(config),
      streamDrops: () => p.streams.drops.snapshot(),
      tails: p.tails,
      metrics: this.metrics,
      redisPing: async () => {
        const redis = p.engine.redis;
        if (redis === undefined) return undefined;
        const started = performance.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([redis.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), REDIS_PING_TIMEOUT_MS)))]);
          return (performance.now() - started) / 1000;
        } catch {
          return undefined;
        } finally {
          clearTimeout(timer);
        }
      },
      clusterInstances: async () => (this.cluster === undefined ? undefined : this.cluster.list()),
      audit: new AuditTrail(this.log, p.instanceId, p.engine.sql, config.databaseSchema),
    };
  }
}
