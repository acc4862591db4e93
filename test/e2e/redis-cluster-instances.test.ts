// Many instances as one on a 3-master Redis Cluster (deploy/services.sh starts it):
// the 3-instance fan-out scenario, with sessions spread over every master, so the
// sharded Pub/Sub, the per-session hash tags and the per-master heartbeats are all
// in play.
import t from 'tap';
import { Cluster } from 'ioredis';
import { slotOf } from '../../daemon/engine/redis-slot.js';
import { fanOut, redisEnv, startInstances } from '../support/instances.js';
import { REDIS_CLUSTER_NODES, redisClusterUp, uniquePrefix } from '../support/redis.js';

t.test('300 clients on 3 instances over a Redis Cluster, sessions on every master: every seq once, in order', async (t) => {
  if (!(await redisClusterUp())) return t.fail(`no Redis Cluster at ${REDIS_CLUSTER_NODES.join(',')}: run deploy/services.sh`);
  const prefix = uniquePrefix('cluster');
  const sessions = ['quiz:c1', 'quiz:c2', 'quiz:c3', 'quiz:c4', 'quiz:c5', 'quiz:c6', 'quiz:c7', 'quiz:c8'];
  const cluster = new Cluster(REDIS_CLUSTER_NODES.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) })));
  t.teardown(() => cluster.quit());
  await cluster.ping();
  const masters = new Set(sessions.map((s) => cluster.slots[slotOf(`${prefix}{${s}}:m`)]?.[0]));
  t.equal(masters.size, 3, `the sessions live on all 3 masters (${[...masters].join(', ')})`);

  const instances = await startInstances(3, redisEnv(REDIS_CLUSTER_NODES.join(','), prefix, true));
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  t.ok(instances.every((d) => d.lines.some((l) => l.msg === 'listening' && l.engine === 'redis cluster')), 'the instances run the Redis Cluster engine');
  await fanOut(t, instances, sessions, 300, 100);
  // Sharded Pub/Sub: each session's channel is known only to its own master.
  const channels = await Promise.all(cluster.nodes('master').map((n) => n.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`) as Promise<string[]>));
  t.ok(channels.every((list) => list.length < sessions.length), `no master carries every session channel (${channels.map((l) => l.length).join(', ')})`);
});
