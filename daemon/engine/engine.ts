/**
 * Picks the engine from the configuration and owns its lifecycle: the standalone
 * (memory) engine by default, the Redis engine when `redisUrl` is set (broker,
 * presence and command limits shared by every instance on that Redis or Redis
 * Cluster), and the Postgres command journal when `databaseUrl` is set (else the
 * journal is in memory, per instance). Nothing outside this file asks which one it
 * has (test hooks reach fault injection through `faults`; the relay's lease and
 * cursor use `sql`).
 */
import type { Config } from '../config/schema.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Logger } from '../log.js';
import type { Broker, BrokerHandler, BrokerHealth } from './broker.js';
import type { CommandJournal } from './command-journal.js';
import { createMemoryCommandLimiter, type CommandLimiter } from './command-limiter.js';
import { createRedisCommandLimiter } from './redis-command-limiter.js';
import { createMemoryBroker } from './memory-broker.js';
import { createMemoryCommandJournal } from './memory-command-journal.js';
import { createMemoryPresence } from './memory-presence.js';
import type { Presence } from './presence.js';
import { createRedisBroker } from './redis-broker.js';
import { connectRedis } from './redis-connection.js';
import { createRedisPresence } from './redis-presence.js';
import type { Cluster, Redis } from 'ioredis';
import type { Sql } from './migrations.js';
import { createPostgresCommandJournal } from './postgres-command-journal.js';
import { connectPostgres } from './postgres-client.js';
import { AMQP_RELAY } from './postgres-cursor-store.js';
import { JournalRetention } from './journal-retention.js';

/** How long start() waits for Redis before the daemon gives up (it then exits non-zero). */
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

/** Faults a test can inject into the engine (test hooks only). */
export interface EngineFaults {
  /** The session's history is lost: it continues under a new epoch. */
  resetEpoch(session: string): void | Promise<void>;
}

/** The backends one instance runs on. */
export interface Engine {
  /** Human name for logs ("memory", "redis", "redis cluster"). */
  readonly kind: string;
  readonly broker: Broker;
  readonly presence: Presence;
  readonly journal: CommandJournal;
  /** Whether a recorded command survives this process (false: in memory). */
  readonly journalDurable: boolean;
  /** The Postgres client when a database is configured (the relay's lease and cursor live there). */
  readonly sql?: Sql;
  /** Per-user command limits (namespaces' commandLimits). */
  readonly limiter: CommandLimiter;
  /** The Redis command connection, with the Redis engine (the admin API's cluster registry and round-trip metric use it). */
  readonly redis?: Redis | Cluster;
  /** Present when test hooks are on and the engine can inject faults. */
  readonly faults?: EngineFaults;
  /** Connects every backend; `handler` receives the broker's messages. */
  start(handler: BrokerHandler): Promise<void>;
  /** The broker's health (Redis reachable and hearing): readiness follows it; the journal's outages are answered per command instead. */
  health(): BrokerHealth;
  /** Stops the broker first (no new messages), then presence and the journal, by `deadline`. */
  stop(deadline: number): Promise<void>;
}

/** What the engine needs of its instance. */
export interface EngineContext {
  /** Random id of this process (Redis connection names and heartbeat channels carry it). */
  instanceId: string;
  log: Logger;
}

/** Creates the engine; `isActive` tells whether this instance streams a session. */
export function createEngine(config: Config, isActive: (session: string) => boolean, ctx: EngineContext): Engine {
  const memoryJournal = () => createMemoryCommandJournal({ capacity: config.commandJournalSize, maxBytes: config.commandJournalBytes, maxBytesPerUser: config.commandJournalBytesPerUser, keepTakenMs: config.commandJournalTakenRetentionMs });
  const sql =
    config.databaseUrl === undefined
      ? undefined
      : connectPostgres(config.databaseUrl, { applicationName: `shardcast-${ctx.instanceId}` });
  // Flushes time out before the shard's 10 s call does, so a hung Postgres is answered
  // 110 (unavailable) by the journal rather than 111 by the shard.
  const pg = sql === undefined ? undefined : createPostgresCommandJournal({ sql, schema: config.databaseSchema, log: ctx.log, flushTimeoutMs: 8000 });
  const journal: CommandJournal = pg ?? memoryJournal();
  const retention =
    sql === undefined || config.commandRetentionHours === 0
      ? undefined
      : new JournalRetention({
          sql,
          schema: config.databaseSchema,
          retentionMs: config.commandRetentionHours * 3_600_000,
          ...(config.amqpUrl !== undefined ? { relay: AMQP_RELAY } : {}),
          log: ctx.log,
        });
  const durable = pg !== undefined ? { journalDurable: true, sql } : { journalDurable: false };
  /** Starts the journal (migrations) within the start timeout; rejects naming SHARDCAST_DATABASE_URL. */
  const startJournal = async () => {
    if (pg === undefined) return;
    try {
      await pg.start();
    } catch (err) {
      throw new Error(`postgres (SHARDCAST_DATABASE_URL) could not be used: ${err instanceof Error ? err.message : String(err)}`);
    }
    retention?.start();
  };
  const stopJournal = async () => {
    await retention?.stop();
    await journal.close();
    await sql?.end({ timeout: 5 });
  };
  const historySizeFor = (session: string) => namespaceFor(config, session).historySize;
  if (config.redisUrl !== undefined) {
    const link = connectRedis({ url: config.redisUrl, cluster: config.redisCluster }, ctx.instanceId, ctx.log);
    const broker = createRedisBroker({
      link,
      prefix: config.redisPrefix,
      instanceId: ctx.instanceId,
      historySizeFor,
      sessionTtlMs: config.sessionTtlMs,
      maxSnapshotKeys: config.maxSnapshotKeys,
      log: ctx.log,
    });
    const presence = createRedisPresence({ redis: link.command, prefix: config.redisPrefix, leaseMs: config.presenceLeaseMs });
    return {
      kind: config.redisCluster ? 'redis cluster' : 'redis',
      broker,
      presence,
      journal,
      ...durable,
      limiter: createRedisCommandLimiter(link.command, config.redisPrefix),
      redis: link.command,
      ...(config.testHooks ? { faults: { resetEpoch: (session: string) => broker.resetEpoch(session) } } : {}),
      async start(handler) {
        await link.ready(REDIS_CONNECT_TIMEOUT_MS);
        await startJournal();
        await broker.start(handler);
      },
      health() {
        return broker.health();
      },
      async stop(deadline) {
        await broker.stop(deadline);
        await Promise.all([presence.close(), stopJournal()]);
        await link.close();
      },
    };
  }
  const broker = createMemoryBroker({
    historySizeFor,
    sessionTtlMs: config.sessionTtlMs,
    emptySessionTtlMs: config.emptySessionTtlMs,
    maxEmptySessions: config.maxEmptySessions,
    isActive,
    maxSnapshotKeys: config.maxSnapshotKeys,
    network: config.testHooks ? config.testNetwork : undefined,
  });
  const presence = createMemoryPresence({ leaseMs: config.presenceLeaseMs });
  const limiter = createMemoryCommandLimiter();
  return {
    kind: config.testNetwork !== undefined && config.testHooks ? 'memory (network-like, test hooks)' : 'memory',
    broker,
    presence,
    journal,
    ...durable,
    limiter,
    ...(config.testHooks ? { faults: { resetEpoch: (session: string) => broker.resetEpoch(session) } } : {}),
    async start(handler) {
      await startJournal();
      await broker.start(handler);
    },
    health() {
      return broker.health();
    },
    async stop(deadline) {
      await broker.stop(deadline);
      await Promise.all([presence.close(), stopJournal(), limiter.close()]);
    },
  };
}
