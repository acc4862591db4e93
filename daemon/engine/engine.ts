/**
 * Picks the engine from the configuration and owns its lifecycle. Only the
 * standalone (memory) engine exists so far; the Redis, RabbitMQ and Postgres ones
 * plug into the same seams (broker, presence, command journal) and are chosen here
 * by which backend URLs are configured. Nothing outside this file asks which one
 * it has (test hooks reach the memory broker's fault injection through `faults`).
 */
import type { Config } from '../config/schema.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Broker, BrokerHandler, BrokerHealth } from './broker.js';
import type { CommandJournal } from './command-journal.js';
import { createMemoryBroker } from './memory-broker.js';
import { createMemoryCommandJournal } from './memory-command-journal.js';
import { createMemoryPresence } from './memory-presence.js';
import type { Presence } from './presence.js';

/** Faults a test can inject into the engine (test hooks only). */
export interface EngineFaults {
  /** The session's history is lost: it continues under a new epoch. */
  resetEpoch(session: string): void;
}

/** The backends one instance runs on. */
export interface Engine {
  /** Human name for logs ("memory"). */
  readonly kind: string;
  readonly broker: Broker;
  readonly presence: Presence;
  readonly journal: CommandJournal;
  /** Present when test hooks are on and the engine can inject faults. */
  readonly faults?: EngineFaults;
  /** Connects every backend; `handler` receives the broker's messages. */
  start(handler: BrokerHandler): Promise<void>;
  /** Healthy when every backend is. */
  health(): BrokerHealth;
  /** Stops the broker first (no new messages), then presence and the journal, by `deadline`. */
  stop(deadline: number): Promise<void>;
}

/** Creates the engine; `isActive` tells whether this instance streams a session. */
export function createEngine(config: Config, isActive: (session: string) => boolean): Engine {
  const broker = createMemoryBroker({
    historySizeFor: (session) => namespaceFor(config, session).historySize,
    sessionTtlMs: config.sessionTtlMs,
    isActive,
    maxSnapshotKeys: config.maxSnapshotKeys,
    network: config.testHooks ? config.testNetwork : undefined,
  });
  const presence = createMemoryPresence({ leaseMs: config.presenceLeaseMs });
  const journal = createMemoryCommandJournal({ capacity: config.commandJournalSize, maxBytes: config.commandJournalBytes });
  return {
    kind: config.testNetwork !== undefined && config.testHooks ? 'memory (network-like, test hooks)' : 'memory',
    broker,
    presence,
    journal,
    ...(config.testHooks ? { faults: { resetEpoch: (session: string) => broker.resetEpoch(session) } } : {}),
    async start(handler) {
      await broker.start(handler);
    },
    health() {
      return broker.health();
    },
    async stop(deadline) {
      await broker.stop(deadline);
      await Promise.all([presence.close(), journal.close()]);
    },
  };
}
