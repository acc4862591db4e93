/**
 * Both ends of participants' commands for end-to-end tests: a client that sends a
 * `cmd` until it is acked (retrying retryable errors with the same cid, as the SDK
 * does), and an upstream service's queue bound to the commands exchange.
 */
import type { Test } from 'tap';
import { connect, type Channel } from 'amqplib';
import type { ServerFrame } from '../../protocol/frames.js';
import { AMQP_URL } from './rabbitmq.js';
import type { RawClient } from './raw-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Relayed {
  routingKey: string;
  messageId: string;
  headers: Record<string, unknown>;
  body: Record<string, unknown>;
}

/** An upstream service's durable queue bound to the commands exchange (all routing keys). */
export async function upstream(t: Test, exchange: string): Promise<{ queue: string; got: Relayed[]; take(): Promise<void> }> {
  const queue = `${exchange}.upstream`;
  const conn = await connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, exchange, '#');
  await conn.close();
  t.teardown(async () => {
    const admin = await connect(AMQP_URL);
    const c = await admin.createChannel();
    await c.deleteQueue(queue).catch(() => {});
    await c.deleteExchange(exchange).catch(() => {});
    await admin.close();
  });
  const got: Relayed[] = [];
  return {
    queue,
    got,
    /** Takes what the queue holds now (a connection per call: the broker may have restarted). */
    async take() {
      const c = await connect(AMQP_URL).catch(() => null);
      if (c === null) return;
      try {
        const chan: Channel = await c.createChannel();
        for (;;) {
          const msg = await chan.get(queue, { noAck: true });
          if (msg === false) return;
          got.push({
            routingKey: msg.fields.routingKey,
            messageId: String(msg.properties.messageId),
            headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
            body: JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>,
          });
        }
      } finally {
        await c.close().catch(() => {});
      }
    },
  };
}

/** Sends a command until it is acked, retrying with the same cid on a retryable error. */
export async function sendUntilAcked(c: RawClient, s: string, cid: string, data: unknown): Promise<{ dup: boolean; tries: number }> {
  for (let tries = 1; ; tries++) {
    const id = c.id();
    c.send({ t: 'cmd', id, s, cid, type: 'answer', data });
    const reply: ServerFrame = await c.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 30_000);
    if (reply.t === 'ack') return { dup: reply.dup === true, tries };
    if (reply.t === 'error' && (reply.code === 110 || reply.code === 111)) {
      await sleep(200);
      continue;
    }
    throw new Error(`cmd ${cid}: ${JSON.stringify(reply)}`);
  }
}

