/**
 * The RabbitMQ topology of event ingress, declared idempotently by every instance
 * at start and after every reconnect (declaring what exists with the same
 * arguments is a no-op; other arguments are refused with 406, which the ingress
 * reports as a configuration error):
 *
 *   <exchange>               x-consistent-hash, durable: upstreams publish with the
 *                            session id as routing key
 *   <exchange>.p0 … p(K-1)   quorum queues, single active consumer, delivery limit,
 *                            dead-lettered to <exchange>.dead-letter; each bound to
 *                            the exchange with weight "1", so sessions spread evenly
 *                            and each session always lands in the same partition
 *   <exchange>.dead-letter   fanout, durable
 *   <exchange>.dead          quorum queue: poison messages, with the reason in the
 *                            `x-shardcast-error` header
 *
 * One active consumer per partition across all instances is what keeps a session's
 * events in order across instances, failovers and redeliveries.
 */
import type { Channel } from 'amqplib';

/** Names and arguments of the topology for one events exchange. */
export interface Topology {
  exchange: string;
  partitions: string[];
  deadLetterExchange: string;
  deadLetterQueue: string;
  deliveryLimit: number;
}

/** The topology of `exchange` with `partitions` queues. */
export function topologyOf(exchange: string, partitions: number, deliveryLimit: number): Topology {
  return {
    exchange,
    partitions: Array.from({ length: partitions }, (_, i) => `${exchange}.p${i}`),
    deadLetterExchange: `${exchange}.dead-letter`,
    deadLetterQueue: `${exchange}.dead`,
    deliveryLimit,
  };
}

/** Declares every exchange, queue and binding (idempotent). */
export async function declareTopology(ch: Channel, t: Topology): Promise<void> {
  await ch.assertExchange(t.exchange, 'x-consistent-hash', { durable: true });
  await ch.assertExchange(t.deadLetterExchange, 'fanout', { durable: true });
  await ch.assertQueue(t.deadLetterQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(t.deadLetterQueue, t.deadLetterExchange, '');
  for (const queue of t.partitions) {
    await ch.assertQueue(queue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-single-active-consumer': true,
        'x-delivery-limit': t.deliveryLimit,
        'x-dead-letter-exchange': t.deadLetterExchange,
      },
    });
    // The binding key of a consistent-hash exchange is the partition's weight.
    await ch.bindQueue(queue, t.exchange, '1');
  }
}
