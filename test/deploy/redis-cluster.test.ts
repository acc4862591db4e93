// The local 3-master Redis Cluster that deploy/services.sh starts for the Redis
// Cluster tests (.ci/run calls it before the suite). Fails, rather than skips, when
// the cluster is not up: the cluster tests would otherwise be skipped unnoticed.
import t from 'tap';
import { REDIS_CLUSTER_NODES, redisClusterUp } from '../support/redis.js';
import { redisCommand } from '../support/redis-server.js';

t.test('the local Redis Cluster is up (run deploy/services.sh if not)', async (t) => {
  t.ok(await redisClusterUp(), `cluster_state:ok on ${REDIS_CLUSTER_NODES[0]}`);
  for (const node of REDIS_CLUSTER_NODES) {
    const [host, port] = node.split(':');
    const info = String(await redisCommand(Number(port), ['CLUSTER', 'INFO'], 2000, host));
    t.match(info, /^cluster_state:ok\r?$/m, `${node}: cluster_state:ok`);
    t.match(info, /^cluster_slots_assigned:16384\r?$/m, `${node}: all slots assigned`);
    const known = Number(/^cluster_known_nodes:(\d+)/m.exec(info)?.[1]);
    t.ok(known >= REDIS_CLUSTER_NODES.length, `${node}: knows the ${REDIS_CLUSTER_NODES.length} nodes (${known})`);
  }
});
