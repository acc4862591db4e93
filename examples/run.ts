/**
 * Starts one example service against a running Shardcast:
 *
 *   npm run example -- quiz|contest|polls|chat
 *
 * Settings come from the environment (toolkit/service-settings.ts); SIGTERM or SIGINT
 * stops the service cleanly.
 */
import { pino } from 'pino';
import { runUntilSignalled, type RunningService } from './toolkit/run-service.js';
import { settingsFromEnv, type ServiceSettings } from './toolkit/service-settings.js';
import type { Logger } from 'pino';
import { startChat } from './chat/chat-service.js';
import { startContest } from './contest/contest-service.js';
import { startPolls } from './polls/polls-service.js';
import { startQuiz } from './quiz/quiz-service.js';

const SERVICES: Record<string, (settings: ServiceSettings, log: Logger) => Promise<RunningService>> = {
  quiz: (s, log) => startQuiz(s, log),
  contest: (s, log) => startContest(s, log),
  polls: (s, log) => startPolls(s, log),
  chat: (s, log) => startChat(s, log),
};

const name = process.argv[2] ?? '';
const start = Object.hasOwn(SERVICES, name) ? SERVICES[name] : undefined;
if (start === undefined) {
  console.error(`usage: npm run example -- ${Object.keys(SERVICES).join('|')}${name === '' ? '' : ` (not "${name}")`}`);
  process.exitCode = 1;
} else {
  const log = pino({ name: `example-${name}` });
  await runUntilSignalled(log, () => start(settingsFromEnv(name), log));
}
