/**
 * What a shardcast-admin command may touch: its output streams, the environment and
 * an abort signal (SIGINT/SIGTERM in the real process). Passed in so tests run
 * commands in-process.
 */

/** Streams, environment and cancellation for one CLI run. */
export interface CliIo {
  /** Writes one line to stdout (only what scripts parse goes here). */
  stdout(line: string): void;
  /** Writes one line to stderr (messages for people). */
  stderr(line: string): void;
  /** Environment variables (`process.env` in the real process). */
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the user interrupts (SIGINT/SIGTERM). */
  signal: AbortSignal;
}
