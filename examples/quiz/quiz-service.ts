/**
 * The quiz host service (seed 000) wired to Shardcast through RabbitMQ only: it
 * consumes `quiz.*` commands (join, start, answer) from the commands exchange and
 * publishes each game's events to the events exchange. One game per session
 * (quiz-game.ts); every command and timer step runs on one serial queue, so a game
 * never sees two things at once. Game state lives in memory: a restart abandons the
 * games in progress (their finished games and scored answers are in Postgres).
 */
import type { Logger } from 'pino';
import { CommandConsumer } from '../toolkit/command-consumer.js';
import { EventSink } from '../toolkit/event-sink.js';
import type { RunningService } from '../toolkit/run-service.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import type { UpstreamCommand } from '../toolkit/upstream-command.js';
import { QuizGame, type QuizTiming } from './quiz-game.js';
import { QuizStore } from './quiz-store.js';

/** Default pacing: 3 s before the first question, 4 s on each reveal, 1.5 s grace. */
export const DEFAULT_QUIZ_TIMING: QuizTiming = { leadInMs: 3000, revealMs: 4000, graceMs: 1500 };

/** The running quiz service. */
export interface QuizService extends RunningService {
  /** Resolves once the service consumes its queue. */
  ready: Promise<void>;
}

/** Starts the quiz service. */
export async function startQuiz(settings: ServiceSettings, log: Logger, timing: QuizTiming = DEFAULT_QUIZ_TIMING): Promise<QuizService> {
  const store = await QuizStore.open(settings.databaseUrl, settings.schema);
  const sink = new EventSink(settings.amqpUrl, settings.eventsExchange, log);
  const games = new Map<string, QuizGame>();
  const timers = new Map<string, Set<NodeJS.Timeout>>();
  let serial: Promise<void> = Promise.resolve();
  let stopping = false;

  /** Runs `step` after every step queued before it. */
  const run = (step: () => Promise<void>): Promise<void> => {
    const next = serial.then(step);
    serial = next.catch(() => {});
    return next;
  };

  /** Runs `step` on the serial queue after `ms`; the timer belongs to the session's set. */
  const later = (session: string, ms: number, step: () => Promise<void>): void => {
    if (stopping) return;
    const set = timers.get(session) ?? new Set<NodeJS.Timeout>();
    timers.set(session, set);
    const timer = setTimeout(() => {
      set.delete(timer);
      run(step).catch((err: unknown) => log.error({ err: (err as Error).message, session }, 'a game step failed; the game stops'));
    }, ms);
    set.add(timer);
  };
  const cancelTimers = (session: string): void => {
    for (const t of timers.get(session) ?? []) clearTimeout(t);
    timers.delete(session);
  };

  const gameOf = (session: string): QuizGame => {
    let game = games.get(session);
    if (game === undefined) {
      game = new QuizGame(session, {
        publish: (...events) => sink.publish(...events),
        store,
        timing,
        log,
        later: (ms, step) => later(session, ms, step),
        cancelTimers: () => cancelTimers(session),
      });
      games.set(session, game);
    }
    return game;
  };

  const consumer = new CommandConsumer({
    url: settings.amqpUrl,
    exchange: settings.commandsExchange,
    queue: settings.queue,
    bindings: ['quiz.*'],
    log,
    handle: (command: UpstreamCommand) =>
      run(() => gameOf(command.session).handle(command)),
  });
  await consumer.start();

  return {
    ready: consumer.ready,
    async stop() {
      stopping = true;
      await consumer.stop();
      for (const session of [...timers.keys()]) cancelTimers(session);
      await serial;
      await sink.close();
      await store.close();
    },
  };
}
