/**
 * The daemon's entry point: load and validate the configuration, check the native
 * uWS binding, start the primary and its shards, and drain on SIGTERM/SIGINT.
 * Exit codes: 0 after a clean drain, 1 when the drain overran its deadline or the
 * shards could not start, 78 (EX_CONFIG) for an invalid configuration.
 * `--version` prints the version and exits 0 without reading any configuration.
 */
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './log.js';
import { Primary } from './primary/primary.js';
import { loadUws, NativeUwsError } from './uws.js';
import { missingAllocatorSettings } from './allocator.js';
import { versionLine } from './version.js';

const EX_CONFIG = 78;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--version') || args.includes('-v')) {
    process.stdout.write(`${versionLine('shardcast')}\n`);
    return;
  }
  let loaded;
  try {
    loaded = loadConfig(process.env, args);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`shardcast: ${err.message}\n`);
      process.exit(EX_CONFIG);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = createLogger({ level: config.logLevel });
  for (const warning of warnings) log.warn(warning);
  try {
    loadUws();
  } catch (err) {
    if (err instanceof NativeUwsError) {
      log.fatal({ code: err.code }, err.message);
      process.exit(1);
    }
    throw err;
  }
  if (config.devMode) {
    log.warn(
      'DEV MODE: connections without a token are accepted as ?user=NAME with access to every session, and publishing needs no API key unless SHARDCAST_API_KEY is set. Never run this in production.',
    );
  }

  const missing = missingAllocatorSettings();
  if (missing.length > 0 && process.platform === 'linux') {
    log.info({ missing }, 'started without the malloc settings npm start and the image set (daemon/allocator.ts): RSS may stay above its baseline after bursts');
  }

  const primary = new Primary(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'already draining');
      return;
    }
    stopping = true;
    void primary.shutdown(signal).then((code) => process.exit(code));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    if (isLostPostgresWrite(err)) {
      // postgres.js 3.4.9 flushes a connection's buffered write in a setImmediate that
      // can run after the connection closed (its socket is null by then) and throws
      // there. The connection is already gone and its queries already failed (their
      // callers retry): nothing is left to clean up, so it is not a reason to drain.
      log.warn({ err }, 'postgres client wrote to a connection that had closed (a postgres.js race); ignored');
      return;
    }
    log.fatal({ err }, 'primary crashed; draining');
    stop('uncaughtException');
  });
  process.on('unhandledRejection', (err, promise) => {
    // Same outcome as Node's default (a crash), but the log says which promise: a
    // postgres.js query names its statement, the only clue an ECONNRESET carries.
    log.fatal({ err, rejected: describePromise(promise) }, 'primary crashed on an unhandled rejection; draining');
    stop('unhandledRejection');
  });

  try {
    await primary.start();
  } catch (err) {
    log.fatal({ err }, (err as Error).message);
    stopping = true;
    await primary.shutdown('start failed');
    process.exit(1);
  }
}

/** The postgres.js race above: a TypeError thrown by its `nextWrite` on a closed connection. */
function isLostPostgresWrite(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    /reading 'write'/.test(err.message) &&
    /node_modules\/postgres\/src\/connection\.js/.test(err.stack ?? '') &&
    /nextWrite/.test(err.stack ?? '')
  );
}

/** What a rejected promise was, for the crash log: its class and, for a postgres.js query, its statement. */
function describePromise(promise: Promise<unknown>): string {
  const strings = (promise as { strings?: unknown }).strings;
  const statement = Array.isArray(strings) ? strings.join('$?').replace(/\s+/g, ' ').trim().slice(0, 300) : undefined;
  return statement === undefined ? promise.constructor.name : `${promise.constructor.name}: ${statement}`;
}

void main();
