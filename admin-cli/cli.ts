/**
 * shardcast-admin's dispatcher: picks the verb, handles help, and maps failures to
 * exit codes (0 ok, 1 failure with a message, 2 bad usage with the usage text).
 */
import type { CliIo } from './cli-io.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE, UsageError } from './cli-errors.js';
import { COMMANDS } from './commands/index.js';
import { versionLine } from '../daemon/version.js';

/** Top-level usage text. */
export function mainUsage(): string {
  const width = Math.max(...[...COMMANDS.keys()].map((name) => name.length));
  const verbs = [...COMMANDS.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: shardcast-admin <command> [flags]

Commands:
${verbs}
  ${'help'.padEnd(width)}  show help for a command: shardcast-admin help <command>
  ${'--version'.padEnd(width)}  print the version

Environment: SHARDCAST_URL (daemon address, default http://127.0.0.1:8080);
SHARDCAST_ADMIN_URL (admin API, default http://127.0.0.1:9090) and
SHARDCAST_ADMIN_TOKEN for the admin verbs.
Exit codes: 0 ok, 1 failure, 2 bad usage, 3 daemon unreachable, 4 token refused,
5 not found.
Run shardcast-admin <command> --help for its flags.`;
}

/** Runs shardcast-admin with `argv` (without node and script); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined) {
    io.stderr(mainUsage());
    return EXIT_USAGE;
  }
  if (verb === '--version' || verb === '-v' || verb === 'version') {
    io.stdout(versionLine('shardcast-admin'));
    return 0;
  }
  if (verb === 'help' || verb === '--help' || verb === '-h') {
    const topic = verb === 'help' ? args[0] : undefined;
    if (topic === undefined) {
      io.stdout(mainUsage());
      return 0;
    }
    const command = COMMANDS.get(topic);
    if (!command) {
      io.stderr(`unknown command: ${topic}\n\n${mainUsage()}`);
      return EXIT_USAGE;
    }
    io.stdout(command.usage);
    return 0;
  }
  const command = COMMANDS.get(verb);
  if (!command) {
    io.stderr(`unknown command: ${verb}\n\n${mainUsage()}`);
    return EXIT_USAGE;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(command.usage);
    return 0;
  }
  try {
    return await command.run([...args], io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`shardcast-admin ${command.name}: ${err.message}\n\n${command.usage}`);
      return EXIT_USAGE;
    }
    if (err instanceof CliError) {
      io.stderr(`shardcast-admin ${command.name}: ${err.message}`);
      return err.exitCode;
    }
    io.stderr(`shardcast-admin ${command.name}: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return EXIT_FAILURE;
  }
}
