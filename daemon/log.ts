/**
 * Structured logs: pino JSON lines on stdout, no pretty printing, no transports
 * (they spawn threads of their own). Each thread writes synchronously to fd 1 itself:
 * a shard's `process.stdout` is a pipe relayed through the primary's event loop, so
 * writing to the fd directly keeps a shard's last lines when it crashes and keeps
 * logging off the primary's loop. One write() per line; lines up to PIPE_BUF (4 KiB)
 * never interleave between threads on a pipe.
 *
 * Every line carries `pid`; lines from a shard thread also carry `shard` (its
 * number). The primary's lines have no `shard` field, so the field keeps one type
 * (a number) for log indexers.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

let stdoutDestination: DestinationStream | undefined;

/** The thread's one synchronous destination on fd 1, created on first use. */
function stdout(): DestinationStream {
  stdoutDestination ??= pino.destination({ dest: 1, sync: true });
  return stdoutDestination;
}

/** Options of createLogger; `destination` is for tests that capture lines (defaults to fd 1). */
export interface LoggerOptions {
  /** pino level name (config.logLevel). */
  readonly level: string;
  /** Shard number, on every line of a shard thread; omit in the primary. */
  readonly shard?: number;
  /** Component name, added as `name` on every line. */
  readonly name?: string;
  readonly destination?: DestinationStream;
}

/** Creates a pino logger writing JSON lines with base fields `{ pid, shard? , name? }`. */
export function createLogger(opts: LoggerOptions): Logger {
  const base: Record<string, unknown> = { pid: process.pid };
  if (opts.shard !== undefined) base.shard = opts.shard;
  return pino(
    {
      level: opts.level,
      base,
      ...(opts.name === undefined ? {} : { name: opts.name }),
    },
    opts.destination ?? stdout(),
  );
}
