/**
 * The chat service (seed 003) wired to Shardcast through RabbitMQ only: it consumes
 * `chat.*` commands, stores each message in Postgres, then publishes it to the room.
 */
import type { Logger } from 'pino';
import { CommandConsumer } from '../toolkit/command-consumer.js';
import { EventSink } from '../toolkit/event-sink.js';
import type { RunningService } from '../toolkit/run-service.js';
import { SerialSteps } from '../toolkit/serial-steps.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { ChatRooms, type ChatRules } from './chat-room.js';
import { ChatStore } from './chat-store.js';

/** Messages up to 2000 characters; the last 50 as the `recent` snapshot, at most once a second. */
export const DEFAULT_CHAT_RULES: ChatRules = { maxLength: 2000, recentSize: 50, recentEveryMs: 1000 };

/** Starts the chat service. */
export async function startChat(settings: ServiceSettings, log: Logger, rules: ChatRules = DEFAULT_CHAT_RULES): Promise<RunningService> {
  const store = await ChatStore.open(settings.databaseUrl, settings.schema);
  const sink = new EventSink(settings.amqpUrl, settings.eventsExchange, log);
  const steps = new SerialSteps(log);
  const rooms = new ChatRooms(store, (...events) => sink.publish(...events), steps, rules);
  const consumer = new CommandConsumer({
    url: settings.amqpUrl,
    exchange: settings.commandsExchange,
    queue: settings.queue,
    bindings: ['chat.*'],
    log,
    handle: (command) => steps.run(() => rooms.handle(command)),
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
