/**
 * Entry point of a shard worker thread. A shard must close its uWS App before the
 * thread ends or Node aborts the whole process (docs/architecture.md, "Facts about
 * this uWS build"): on an uncaught error
 * the last-chance handler closes the App and exits with code 1, and the primary's
 * supervisor restarts the shard; the other shards never notice.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { createLogger } from '../log.js';
import type { ShardInit } from '../threads/messages.js';
import { Shard } from './shard.js';

const { init, config } = workerData as { init: ShardInit; config: Config };
const log = createLogger({ level: config.logLevel, shard: init.shardId });

if (parentPort === null) throw new Error('shard/worker.js runs as a worker thread of the daemon, not on its own');

const shard = new Shard(config, init.shardId, parentPort, log, init.userRates);

process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'shard crashed');
  try {
    shard.stop();
  } finally {
    process.exit(1);
  }
});
process.on('unhandledRejection', (err) => {
  throw err;
});

shard.listen(init.port);
