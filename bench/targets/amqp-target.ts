/**
 * The RabbitMQ the `shardcast-amqp` target takes its events in through: an events
 * exchange unique to the run (`bench.<time>-<random>`, declared by the daemon at
 * start with its partition queues), the broker's beam.smp process for /proc
 * readings when it runs on this machine, and the clean-up that deletes the run's
 * queues and exchanges once the daemon has stopped.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, type Channel } from 'amqplib';
import { topologyOf } from '../../daemon/ingress/amqp-topology.js';
import type { BackingServer } from './target.js';

/** Partition queues the daemon is started with (SHARDCAST_AMQP_PARTITIONS). */
export const BENCH_AMQP_PARTITIONS = 8;

/** One run's exchange on a RabbitMQ. */
export interface BenchAmqp {
  readonly url: string;
  /** `bench.<time>-<random>`, unique to this run. */
  readonly exchange: string;
  /** The beam.smp process when the broker is on this machine and readable in /proc; otherwise absent. */
  readonly backing?: BackingServer;
  /** Deletes the run's queues and exchanges; says so on stderr. Idempotent. */
  cleanUp(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The pid of the one RabbitMQ node (beam.smp with `rabbit` on its command line) on this machine, or 0. */
function rabbitPid(): number {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/stat`, 'utf8').includes('(beam.smp)')) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('rabbit')) found.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found.length === 1 ? found[0] : 0;
}

/** Checks that a broker answers at `url` and picks a fresh exchange name. */
export async function benchAmqp(url: string): Promise<BenchAmqp> {
  try {
    const conn = await connect(url);
    await conn.close();
  } catch (err) {
    throw new Error(
      `bench: no RabbitMQ answers at ${url} (${err instanceof Error ? err.message : String(err)}); ` +
        'start one (deploy/services.sh) or point BENCH_AMQP_URL at one',
    );
  }
  const exchange = `bench.${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

  let backing: BackingServer | undefined;
  const pid = LOOPBACK.has(new URL(url).hostname) ? rabbitPid() : 0;
  if (pid > 0) backing = { name: 'rabbitmq', pid };
  else process.stderr.write(`bench: rabbitmq at ${new URL(url).host}: its beam.smp process is not readable here; RabbitMQ CPU is not counted\n`);

  let cleaned: Promise<void> | undefined;
  const cleanUp = async (): Promise<void> => {
    // <ex>.p0 … <ex>.p7, <ex>.dead; <ex>, <ex>.dead-letter (the delivery limit does not matter for names).
    const names = topologyOf(exchange, BENCH_AMQP_PARTITIONS, 1);
    const queues = [...names.partitions, names.deadLetterQueue];
    const exchanges = [names.exchange, names.deadLetterExchange];
    const conn = await connect(url);
    conn.on('error', () => undefined);
    const notes: string[] = [];
    let left = 0;
    let ch: Channel | undefined;
    const channel = async (): Promise<Channel> => {
      if (!ch) {
        const opened = await conn.createChannel();
        opened.on('error', () => undefined);
        opened.on('close', () => {
          if (ch === opened) ch = undefined;
        });
        ch = opened;
      }
      return ch;
    };
    try {
      for (const queue of queues) {
        try {
          const { messageCount } = await (await channel()).deleteQueue(queue);
          left += messageCount;
          if (messageCount > 0) notes.push(`${queue} held ${messageCount}`);
        } catch (err) {
          notes.push(`${queue}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      for (const name of exchanges) {
        try {
          await (await channel()).deleteExchange(name);
        } catch (err) {
          notes.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } finally {
      await conn.close().catch(() => undefined);
    }
    process.stderr.write(
      `bench: rabbitmq: deleted ${queues.length} queues and ${exchanges.length} exchanges of ${exchange} ` +
        `(${left} messages left in them${notes.length ? `; ${notes.join('; ')}` : ''})\n`,
    );
  };
  return {
    url,
    exchange,
    ...(backing ? { backing } : {}),
    cleanUp: () => (cleaned ??= cleanUp()),
  };
}
