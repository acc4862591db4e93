/**
 * The contest service (seed 001) wired to Shardcast through RabbitMQ only: it
 * consumes `contest.*` commands (join, start, answer) and publishes each contest's
 * events. One contest per session (contest-game.ts), every command and timer step on
 * one serial queue; state in memory (results in Postgres).
 */
import type { Logger } from 'pino';
import { perSession, serveCommands } from '../toolkit/command-service.js';
import type { RunningService } from '../toolkit/run-service.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { ContestGame, type ContestRules } from './contest-game.js';
import { ContestStore } from './contest-store.js';

/** Seed 001: six seats (starting once all are taken), a 5 s countdown, 3 s between rounds, 1.5 s grace, 1 s to decide. */
export const DEFAULT_CONTEST_RULES: ContestRules = { seats: 6, autoStart: true, countdownMs: 5000, pauseMs: 3000, graceMs: 1500, decideMs: 1000 };

/** Starts the contest service. */
export async function startContest(settings: ServiceSettings, log: Logger, rules: ContestRules = DEFAULT_CONTEST_RULES): Promise<RunningService> {
  const store = await ContestStore.open(settings.databaseUrl, settings.schema);
  return serveCommands(settings, log, 'contest', (tools) => ({
    handle: perSession(tools, (session, own) => new ContestGame(session, { ...own, store, rules, log })),
    close: () => store.close(),
  }));
}
