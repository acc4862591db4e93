/**
 * /metrics with RabbitMQ ingress: deliveries, acks and dead-lettering counted as
 * they happened (a real broker, a fresh exchange, standalone engine).
 */
import t from 'tap';
import { EventPublisher } from '../../protocol/upstream/amqp-publisher.js';
import { startDaemon } from '../support/daemon-process.js';
import { AMQP_URL, amqpEnv, deleteTopology, takeDeadLetters, uniqueExchange } from '../support/rabbitmq.js';
import { holdServiceLock } from '../support/service-lock.js';
import { adminFetch, eventually } from '../support/admin-cli-process.js';
import { parsePrometheusText, sum } from '../support/prometheus-text.js';

const TOKEN = 'amqp-metrics-token-0123456789';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

t.test('AMQP deliveries, acks and dead letters are counted', async (t) => {
  const exchange = uniqueExchange('admin-metrics');
  t.teardown(() => deleteTopology(exchange, 2));
  const daemon = await startDaemon({ ...amqpEnv(exchange, 2), SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_SHARDS: '1' });
  t.teardown(() => daemon.stop());
  const publisher = await EventPublisher.connect(AMQP_URL, exchange);
  t.teardown(() => publisher.close());
  for (let i = 1; i <= 3; i++) publisher.send({ session: 'amqp:metrics', type: 'q', data: i, id: `m${i}` });
  await publisher.confirmed();
  await publisher.publishRaw('amqp:metrics', Buffer.from('{"type": '), { contentType: 'application/json' });

  const samples = await eventually('4 deliveries settled', async () => {
    const s = parsePrometheusText((await adminFetch(daemon, TOKEN, '/metrics')).text).samples;
    return sum(s, 'shardcast_amqp_deliveries_total', { outcome: 'acked' }) === 4 ? s : undefined;
  });
  t.equal(sum(samples, 'shardcast_amqp_deliveries_total', { outcome: 'received' }), 4);
  t.equal(sum(samples, 'shardcast_amqp_deliveries_total', { outcome: 'dead_lettered' }), 1, 'the broken message');
  t.equal(sum(samples, 'shardcast_amqp_deliveries_total', { outcome: 'acked' }), 4, 'three stored and the dead-lettered one acked');
  t.equal(sum(samples, 'shardcast_amqp_deliveries_total', { outcome: 'redelivered' }), 0);
  t.equal(sum(samples, 'shardcast_published_events_total', { outcome: 'sequenced' }), 3);
  t.equal((await takeDeadLetters(exchange, 2)).length, 1);
});
