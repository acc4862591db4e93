/**
 * The quiz host service (seed 000) wired to Shardcast through RabbitMQ only: it
 * consumes `quiz.*` commands (join, start, answer) from the commands exchange and
 * publishes each game's events to the events exchange. One game per session
 * (quiz-game.ts); every command and timer step runs on one serial queue, so a game
 * never sees two things at once. Game state lives in memory: a restart abandons the
 * games in progress (their scored answers and finished games are in Postgres).
 */
import type { Logger } from 'pino';
import { perSession, serveCommands } from '../toolkit/command-service.js';
import type { RunningService } from '../toolkit/run-service.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { QuizGame, type QuizTiming } from './quiz-game.js';
import { QuizStore } from './quiz-store.js';

/** Default pacing: 3 s before the first question, 4 s on each reveal, 1.5 s grace. */
export const DEFAULT_QUIZ_TIMING: QuizTiming = { leadInMs: 3000, revealMs: 4000, graceMs: 1500 };

/** Starts the quiz service. */
export async function startQuiz(settings: ServiceSettings, log: Logger, timing: QuizTiming = DEFAULT_QUIZ_TIMING): Promise<RunningService> {
  const store = await QuizStore.open(settings.databaseUrl, settings.schema);
  return serveCommands(settings, log, 'quiz', (tools) => ({
    handle: perSession(tools, (session, own) => new QuizGame(session, { ...own, store, timing, log })),
    close: () => store.close(),
  }));
}
