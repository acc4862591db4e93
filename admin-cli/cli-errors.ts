/**
 * The two ways a shardcast-admin command fails, mapped to exit codes by cli.ts:
 * a UsageError (bad verb, flag or value: exit 2, usage on stderr) and a CliError
 * (the daemon or the environment said no: exit 1, message on stderr).
 */

/** Exit code of a run that failed for a reason other than usage. */
export const EXIT_FAILURE = 1;
/** Exit code of a run with bad arguments. */
export const EXIT_USAGE = 2;

/** Wrong arguments: the message says which, the usage of the verb follows it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command could not do its job (missing secret, daemon refused or unreachable). */
export class CliError extends Error {
  override readonly name = 'CliError';
}
