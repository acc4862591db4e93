/** Every shardcast-admin verb, in the order `help` lists them. */
import type { Command } from '../command.js';
import { checkconfigCommand } from './checkconfig.js';
import { connsCommand } from './conns.js';
import { drainCommand } from './drain.js';
import { kickCommand } from './kick.js';
import { genconfigCommand } from './genconfig.js';
import { listenCommand } from './listen.js';
import { publishCommand } from './publish.js';
import { sessionCommand } from './session.js';
import { sessionsCommand } from './sessions.js';
import { shardsCommand } from './shards.js';
import { statusCommand } from './status.js';
import { tailCommand } from './tail.js';
import { tokenCommand } from './token.js';

/** The verbs by name. */
export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    tokenCommand,
    publishCommand,
    listenCommand,
    statusCommand,
    shardsCommand,
    sessionsCommand,
    sessionCommand,
    connsCommand,
    kickCommand,
    drainCommand,
    tailCommand,
    checkconfigCommand,
    genconfigCommand,
  ].map((command) => [command.name, command]),
);
