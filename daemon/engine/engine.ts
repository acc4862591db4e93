/**
 * Picks the engine from the configuration. Only the standalone (memory) engine
 * exists so far; the Redis, RabbitMQ and Postgres ones plug into the same four
 * seams (sequencer, bus, presence, command journal) and are chosen here by which
 * backend URLs are configured. Nothing outside this file asks which one it has.
 */
import type { Config } from '../config/schema.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Bus } from './bus.js';
import type { CommandJournal } from './command-journal.js';
import { createMemoryBus } from './memory-bus.js';
import { createMemoryCommandJournal } from './memory-command-journal.js';
import { createMemoryPresence } from './memory-presence.js';
import { createMemorySequencer } from './memory-sequencer.js';
import type { Presence } from './presence.js';
import type { Sequencer } from './sequencer.js';

/** The backends one instance runs on. */
export interface Engine {
  /** Human name for logs ("memory"). */
  readonly kind: string;
  readonly sequencer: Sequencer;
  readonly bus: Bus;
  readonly presence: Presence;
  readonly journal: CommandJournal;
  close(): Promise<void>;
}

/** Creates the engine; `isActive` tells whether a session has local subscribers. */
export function createEngine(config: Config, isActive: (session: string) => boolean): Engine {
  const bus = createMemoryBus();
  const sequencer = createMemorySequencer({
    bus,
    historySizeFor: (session) => namespaceFor(config, session).historySize,
    sessionTtlMs: config.sessionTtlMs,
    isActive,
  });
  const presence = createMemoryPresence();
  const journal = createMemoryCommandJournal(config.commandJournalSize);
  return {
    kind: 'memory',
    sequencer,
    bus,
    presence,
    journal,
    async close() {
      await Promise.all([sequencer.close(), bus.close(), presence.close(), journal.close()]);
    },
  };
}
