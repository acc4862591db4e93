/**
 * The shardcast-amqp target's pieces against the machine's RabbitMQ: the bench's
 * AMQP publisher sends one persistent JSON message per session and tick, routed by
 * session, `message_id` = `bench-<index>`, carrying the same payload marker as the
 * HTTP publisher; and the clean-up deletes every queue and exchange of the run.
 */
import { connect } from 'amqplib';
import t from 'tap';
import { declareTopology, topologyOf } from '../../daemon/ingress/amqp-topology.js';
import { amqpPublisher } from '../../bench/load/amqp-publisher.js';
import { EVENT_TYPE, findPayload, type ParsedPayload } from '../../bench/load/payload.js';
import { benchAmqp, BENCH_AMQP_PARTITIONS } from '../../bench/targets/amqp-target.js';
import { holdServiceLock } from '../support/service-lock.js';
import { AMQP_URL, uniqueExchange } from '../support/rabbitmq.js';

await holdServiceLock('rabbitmq');

t.test('one confirmed message per session and tick, with the payload marker', async (t) => {
  const exchange = uniqueExchange('bench-publisher');
  const conn = await connect(AMQP_URL);
  t.teardown(() => conn.close().catch(() => {}));
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
  t.teardown(() => ch.deleteExchange(exchange).catch(() => {}));
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, exchange, 'bench-s1');
  await ch.bindQueue(queue, exchange, 'bench-s2');

  const publisher = await amqpPublisher(AMQP_URL, exchange);
  await publisher.publish(['bench-s1', 'bench-s2'], 7);
  await publisher.closed();

  const got = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (msg === false) break;
    got.push(msg);
  }
  t.equal(got.length, 2, 'one message per session');
  t.same(got.map((m) => m.fields.routingKey).sort(), ['bench-s1', 'bench-s2'], 'routed by session');
  for (const m of got) {
    t.equal(m.properties.messageId, 'bench-7', 'message_id is the event id');
    t.equal(m.properties.deliveryMode, 2, 'persistent');
    t.equal(m.properties.contentType, 'application/json');
    const body = JSON.parse(m.content.toString('utf8')) as { type: string; data: string };
    t.equal(body.type, EVENT_TYPE);
    const parsed: ParsedPayload = { index: -1, t0us: 0 };
    t.ok(findPayload(m.content, parsed), 'the body carries the payload marker');
    t.equal(parsed.index, 7);
    t.ok(parsed.t0us > 0, 'stamped with the publish time');
  }
});

t.test('clean-up deletes the run\'s queues and exchanges', async (t) => {
  const amqp = await benchAmqp(AMQP_URL);
  const names = topologyOf(amqp.exchange, BENCH_AMQP_PARTITIONS, 20);
  const conn = await connect(AMQP_URL);
  t.teardown(() => conn.close().catch(() => {}));
  await declareTopology(await conn.createChannel(), names);
  await amqp.cleanUp();
  for (const queue of [...names.partitions, names.deadLetterQueue]) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await t.rejects(ch.checkQueue(queue), { code: 404 }, `${queue} deleted`);
  }
  for (const exchange of [names.exchange, names.deadLetterExchange]) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await t.rejects(ch.checkExchange(exchange), { code: 404 }, `${exchange} deleted`);
  }
});
