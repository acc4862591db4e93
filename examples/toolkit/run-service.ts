/**
 * Runs an example service as a process: starts it, and on SIGTERM or SIGINT stops it
 * (no new command taken, the one in hand finished, events confirmed, connections
 * closed) and exits 0; a failed start, or a stop that fails or takes longer than
 * `stopTimeoutMs`, exits 1 with the reason.
 */
import type { Logger } from 'pino';

/** What every example service returns from its start function. */
export interface RunningService {
  /** Resolves once the service consumes its commands queue. */
  ready: Promise<void>;
  /** Stops taking commands, finishes what is in hand, closes every connection and timer. */
  stop(): Promise<void>;
}

/** Starts the service and stops it on the first SIGTERM or SIGINT (exit 1 if the stop takes over `stopTimeoutMs`). */
export async function runUntilSignalled(log: Logger, start: () => Promise<RunningService>, stopTimeoutMs = 15_000): Promise<void> {
  let service: RunningService;
  try {
    service = await start();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not start');
    process.exitCode = 1;
    return;
  }
  log.info('started; SIGTERM or SIGINT stops it');
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    // A broker or database that does not answer must not keep the process for ever.
    setTimeout(() => {
      log.error({ stopTimeoutMs }, 'stop did not finish in time; exiting');
      process.exit(1);
    }, stopTimeoutMs).unref();
    service.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
