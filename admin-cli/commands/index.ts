/** Every shardcast-admin verb, in the order `help` lists them. */
import type { Command } from '../command.js';
import { checkconfigCommand } from './checkconfig.js';
import { genconfigCommand } from './genconfig.js';
import { listenCommand } from './listen.js';
import { publishCommand } from './publish.js';
import { tokenCommand } from './token.js';

/** The verbs by name. */
export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [tokenCommand, publishCommand, listenCommand, checkconfigCommand, genconfigCommand].map((command) => [command.name, command]),
);
