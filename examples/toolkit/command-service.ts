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
