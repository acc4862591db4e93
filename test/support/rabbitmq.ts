/**
 * The machine's RabbitMQ for the ingress tests (deploy/services.sh keeps it up).
 * Tests isolate themselves with an events exchange of their own (its queues are
 * named after it) and delete what they declared; the one test that restarts the
 * broker starts it again before it ends.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { topologyOf } from '../../daemon/ingress/amqp-topology.js';

const run = promisify(execFile);

export const AMQP_URL = process.env.SHARDCAST_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** An events exchange name no other test uses. */
export function uniqueExchange(name: string): string {
  return `test.${name}.${randomBytes(4).toString('hex')}`;
}

/** Environment selecting RabbitMQ ingress on `exchange`. */
export function amqpEnv(exchange: string, partitions = 2): Record<string, string> {
  return { SHARDCAST_AMQP_URL: AMQP_URL, SHARDCAST_AMQP_EXCHANGE: exchange, SHARDCAST_AMQP_PARTITIONS: String(partitions) };
}

/** A message of the dead-letter queue. */
export interface DeadLetter {
  routingKey: string;
  body: string;
  reason: string | undefined;
}

/** Takes every message out of the exchange's dead-letter queue. */
export async function takeDeadLetters(exchange: string, partitions: number): Promise<DeadLetter[]> {
  const conn = await connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const queue = topologyOf(exchange, partitions, 1).deadLetterQueue;
    const out: DeadLetter[] = [];
    for (;;) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg === false) return out;
      const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
      const reason = headers['x-shardcast-error'];
      out.push({ routingKey: msg.fields.routingKey, body: msg.content.toString('utf8'), reason: typeof reason === 'string' ? reason : undefined });
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Messages waiting in each partition queue. */
export async function queueDepths(exchange: string, partitions: number): Promise<number[]> {
  const conn = await connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const depths = [];
    for (const q of topologyOf(exchange, partitions, 1).partitions) depths.push((await ch.checkQueue(q)).messageCount);
    return depths;
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Deletes the exchange's queues and exchanges (test teardown). */
export async function deleteTopology(exchange: string, partitions: number): Promise<void> {
  const t = topologyOf(exchange, partitions, 1);
  const conn = await connect(AMQP_URL).catch(() => null);
  if (conn === null) return;
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    for (const q of [...t.partitions, t.deadLetterQueue]) await ch.deleteQueue(q).catch(() => {});
    for (const x of [t.exchange, t.deadLetterExchange]) await ch.deleteExchange(x).catch(() => {});
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Stops the RabbitMQ application of the machine's node (the node stays up; durable queues keep their messages). */
export async function stopRabbitMQ(): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
}

/** Starts it again and waits until it runs. */
export async function startRabbitMQ(): Promise<void> {
  await run('rabbitmqctl', ['start_app'], { timeout: 60_000 });
  await run('rabbitmqctl', ['await_startup'], { timeout: 60_000 });
}
