/**
 * The two ways a shardcast-admin command fails, mapped to exit codes by cli.ts:
 * a UsageError (bad verb, flag or value: exit 2, usage on stderr) and a CliError
 * (the daemon or the environment said no: exit 1, or the more precise code it
 * carries — 3 daemon unreachable, 4 token refused, 5 not found — message on stderr).
 */

/** Exit code of a run that failed for a reason other than usage. */
export const EXIT_FAILURE = 1;
/** Exit code of a run with bad arguments. */
export const EXIT_USAGE = 2;
/** The admin API could not be reached (wrong address, daemon down). */
export const EXIT_UNREACHABLE = 3;
/** The admin API refused the token (401). */
export const EXIT_UNAUTHORIZED = 4;
/** What was asked for does not exist (unknown session, shard or connection: 404). */
export const EXIT_NOT_FOUND = 5;

/** Wrong arguments: the message says which, the usage of the verb follows it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command could not do its job (missing secret, daemon refused or unreachable). */
export class CliError extends Error {
  override readonly name = 'CliError';

  /** `exitCode`: the process exit code (EXIT_FAILURE unless a more precise one applies). */
  constructor(message: string, readonly exitCode: number = EXIT_FAILURE) {
    super(message);
  }
}
