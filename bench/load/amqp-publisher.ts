/**
 * Publishes benchmark events to Shardcast through RabbitMQ ingress (docs/rabbitmq.md)
 * instead of HTTP: one message per event to the events exchange, the session id as
 * routing key, JSON `{type, data}`, `message_id` = `bench-<event index>` (unique per
 * session), persistent, on a confirm channel (protocol/upstream/amqp-publisher.ts).
 * Same payload and marker as the HTTP publisher (load/payload.ts): each batch of up
 * to 100 sessions is stamped just before its messages are written, and a tick
 * resolves once the broker confirmed every batch of it.
 */
import { EventPublisher } from '../../protocol/upstream/amqp-publisher.js';
import { EVENT_TYPE, makePayload, nowUs } from './payload.js';
import type { Publisher } from './publisher.js';

const BATCH = 100;

/** A Publisher whose close also waits for the AMQP connection to close. */
export interface AmqpPublisher extends Publisher {
  closed(): Promise<void>;
}

/** Connects to `url` and publishes to `exchange` (which must exist: a started daemon declared it). */
export async function amqpPublisher(url: string, exchange: string): Promise<AmqpPublisher> {
  const upstream = await EventPublisher.connect(url, exchange);
  let closing: Promise<void> | undefined;
  return {
    async publish(sessions, index) {
      const confirms: Promise<void>[] = [];
      for (let from = 0; from < sessions.length; from += BATCH) {
        const data = makePayload(index, nowUs());
        for (const session of sessions.slice(from, from + BATCH)) {
          upstream.send({ session, type: EVENT_TYPE, data, id: `bench-${index}` });
        }
        confirms.push(upstream.confirmed());
      }
      await Promise.all(confirms);
    },
    close() {
      closing ??= upstream.close();
    },
    closed() {
      closing ??= upstream.close();
      return closing;
    },
  };
}
