/**
 * Picks the engine from the configuration and owns its lifecycle: the standalone
 * (memory) engine by default, the Redis engine when `redisUrl` is set (broker and
 * presence shared by every instance on that Redis or Redis Cluster; the command
 * journal stays per instance until the Postgres journal exists). Nothing outside
 * this file asks which one it has (test hooks reach fault injection through
 * `faults`).
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
  /** Per-user command limits (namespaces' commandLimits). */
  readonly limiter: CommandLimiter;
  /** Present when test hooks are on and the engine can inject faults. */
  readonly faults?: EngineFaults;
  /** Connects every backend; `handler` receives the broker's messages. */
  start(handler: BrokerHandler): Promise<void>;
  /** Healthy when every backend is. */
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
  const journal = createMemoryCommandJournal({ capacity: config.commandJournalSize, maxBytes: config.commandJournalBytes });
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
      journalDurable: false,
      limiter: createRedisCommandLimiter(link.command, config.redisPrefix),
      ...(config.testHooks ? { faults: { resetEpoch: (session: string) => broker.resetEpoch(session) } } : {}),
      async start(handler) {
        await link.ready(REDIS_CONNECT_TIMEOUT_MS);
        await broker.start(handler);
      },
      health() {
        return broker.health();
      },
      async stop(deadline) {
        await broker.stop(deadline);
        await Promise.all([presence.close(), journal.close()]);
        await link.close();
      },
    };
  }
  const broker = createMemoryBroker({
    historySizeFor,
    sessionTtlMs: config.sessionTtlMs,
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
    journalDurable: false,
    limiter,
    ...(config.testHooks ? { faults: { resetEpoch: (session: string) => broker.resetEpoch(session) } } : {}),
    async start(handler) {
      await broker.start(handler);
    },
    health() {
      return broker.health();
    },
    async stop(deadline) {
      await broker.stop(deadline);
      await Promise.all([presence.close(), journal.close(), limiter.close()]);
    },
  };
}
