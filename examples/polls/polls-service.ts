/**
 * The polls service (seed 004) wired to Shardcast through RabbitMQ only: it consumes
 * `poll.*` commands and publishes polls, tallies and each voter's own responses.
 * Commands and tally steps run on one serial queue; the rules live in Postgres.
 */
import type { Logger } from 'pino';
import { serveCommands } from '../toolkit/command-service.js';
import type { RunningService } from '../toolkit/run-service.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { PollStore } from './poll-store.js';
import { Polls, type PollRules } from './polls.js';

/** Seed 004: 20 votes a day per user; a tally at most every 250 ms per poll. */
export const DEFAULT_POLL_RULES: PollRules = { dailyVoteLimit: 20, tallyEveryMs: 250 };

/** Starts the polls service. */
export async function startPolls(settings: ServiceSettings, log: Logger, rules: PollRules = DEFAULT_POLL_RULES): Promise<RunningService> {
  const store = await PollStore.open(settings.databaseUrl, settings.schema);
  return serveCommands(settings, log, 'poll', ({ sink, steps }) => {
    const polls = new Polls(store, (...events) => sink.publish(...events), steps, rules);
    return { handle: (command) => polls.handle(command), close: () => store.end() };
  });
}
