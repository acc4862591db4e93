/**
 * The polls service (seed 004) wired to Shardcast through RabbitMQ only: it consumes
 * `poll.*` commands and publishes polls, tallies and each voter's own responses.
 * Commands and tally steps run on one serial queue; the rules live in Postgres.
 */
import type { Logger } from 'pino';
import { CommandConsumer } from '../toolkit/command-consumer.js';
import { EventSink } from '../toolkit/event-sink.js';
import type { RunningService } from '../toolkit/run-service.js';
import { SerialSteps } from '../toolkit/serial-steps.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { PollStore } from './poll-store.js';
import { Polls, type PollRules } from './polls.js';

/** Seed 004: 20 votes a day per user; a tally at most every 250 ms per poll. */
export const DEFAULT_POLL_RULES: PollRules = { dailyVoteLimit: 20, tallyEveryMs: 250 };

/** Starts the polls service. */
export async function startPolls(settings: ServiceSettings, log: Logger, rules: PollRules = DEFAULT_POLL_RULES): Promise<RunningService> {
  const store = await PollStore.open(settings.databaseUrl, settings.schema);
  const sink = new EventSink(settings.amqpUrl, settings.eventsExchange, log);
  const steps = new SerialSteps(log);
  const polls = new Polls(store, (...events) => sink.publish(...events), steps, rules);
  const consumer = new CommandConsumer({
    url: settings.amqpUrl,
    exchange: settings.commandsExchange,
    queue: settings.queue,
    bindings: ['poll.*'],
    log,
    handle: (command) => steps.run(() => polls.handle(command)),
  });
  await consumer.start();
  return {
    ready: consumer.ready,
    async stop() {
      await consumer.stop();
      await steps.stop();
      await sink.close();
      await store.end();
    },
  };
}
