/**
 * The chat service (seed 003) wired to Shardcast through RabbitMQ only: it consumes
 * `chat.*` commands, stores each message in Postgres, then publishes it to the room.
 */
import type { Logger } from 'pino';
import { serveCommands } from '../toolkit/command-service.js';
import type { RunningService } from '../toolkit/run-service.js';
import type { ServiceSettings } from '../toolkit/service-settings.js';
import { ChatRooms, type ChatRules } from './chat-room.js';
import { ChatStore } from './chat-store.js';

/** Messages up to 2000 characters; the last 50 as the `recent` snapshot, at most once a second. */
export const DEFAULT_CHAT_RULES: ChatRules = { maxLength: 2000, recentSize: 50, recentEveryMs: 1000 };

/** Starts the chat service. */
export async function startChat(settings: ServiceSettings, log: Logger, rules: ChatRules = DEFAULT_CHAT_RULES): Promise<RunningService> {
  const store = await ChatStore.open(settings.databaseUrl, settings.schema);
  return serveCommands(settings, log, 'chat', ({ sink, steps }) => {
    const rooms = new ChatRooms(store, (...events) => sink.publish(...events), steps, rules);
    return { handle: (command) => rooms.handle(command), close: () => store.end() };
  });
}
