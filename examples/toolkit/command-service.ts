/**
 * The plumbing every example service shares: an event sink to Shardcast, one queue
 * of serial steps (commands and timers of the service run one at a time), and a
 * command consumer bound to the service's namespace, handing each command to the
 * service's handler as a step. Stopping takes no new command, lets the step in
 * hand finish, waits for the events in flight to be confirmed, then closes the
 * service's own store.
 */
import type { Logger } from 'pino';
import { CommandConsumer } from './command-consumer.js';
import { EventSink } from './event-sink.js';
import type { RunningService } from './run-service.js';
import { SerialSteps } from './serial-steps.js';
import type { ServiceSettings } from './service-settings.js';
import type { UpstreamCommand } from './upstream-command.js';

/** What a service's handler is built with. */
export interface ServiceTools {
  sink: EventSink;
  steps: SerialSteps;
}

/** A service's part: its command handler, and how to close what it opened (its store). */
export interface ServiceParts {
  handle(command: UpstreamCommand): Promise<void>;
  close(): Promise<void>;
}

/** Starts consuming the `namespace.*` commands into the parts `build` makes; resolves once consuming. */
export async function serveCommands(settings: ServiceSettings, log: Logger, namespace: string, build: (tools: ServiceTools) => ServiceParts): Promise<RunningService> {
  const sink = new EventSink(settings.amqpUrl, settings.eventsExchange, log);
  const steps = new SerialSteps(log);
  const parts = build({ sink, steps });
  const consumer = new CommandConsumer({
    url: settings.amqpUrl,
    exchange: settings.commandsExchange,
    queue: settings.queue,
    bindings: [`${namespace}.*`],
    log,
    handle: (command) => steps.run(() => parts.handle(command)),
  });
  try {
    await consumer.start();
  } catch (err) {
    // Nothing of a service that could not start stays open.
    await steps.stop();
    await sink.close().catch(() => {});
    await parts.close().catch(() => {});
    throw err;
  }
  return {
    ready: consumer.ready,
    async stop() {
      await consumer.stop();
      await steps.stop();
      await sink.close();
      await parts.close();
    },
  };
}

/** What a per-session game gets from the plumbing: publishing, and timers of its own session. */
export interface SessionTools {
  publish(...events: Parameters<EventSink['publish']>): ReturnType<EventSink['publish']>;
  later(ms: number, step: () => Promise<void>): void;
  cancelTimers(): void;
}

/** A command handler that hands each command to its session's game, made by `make` on first use. */
export function perSession<G extends { handle(command: UpstreamCommand): Promise<void> }>(
  { sink, steps }: ServiceTools,
  make: (session: string, tools: SessionTools) => G,
): (command: UpstreamCommand) => Promise<void> {
  const games = new Map<string, G>();
  return (command) => {
    const { session } = command;
    let game = games.get(session);
    if (game === undefined) {
      game = make(session, {
        publish: (...events) => sink.publish(...events),
        later: (ms, step) => steps.later(session, ms, step),
        cancelTimers: () => steps.cancel(session),
      });
      games.set(session, game);
    }
    return game.handle(command);
  };
}
