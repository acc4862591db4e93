// The shared Presence suite on the Redis presence table, against the machine's
// Redis (RESP3, ioredis v6's default, and RESP2, what the daemon's connections speak)
// and against the local Redis Cluster (deploy/services.sh starts both), plus what
// only a shared table shows: instances see each other's users, and a lapsed
// owner's departures are reported once, by whichever instance sweeps first.
import t, { type Test } from 'tap';
import { Cluster, Redis } from 'ioredis';
import { createRedisPresence } from '../../daemon/engine/redis-presence.js';
import { presenceOwner, type Presence } from '../../daemon/engine/presence.js';
import { presenceConformance } from './presence.js';
import { REDIS_CLUSTER_NODES, REDIS_URL, redisClusterUp, uniquePrefix } from '../support/redis.js';

type Connection = Redis | Cluster;

/** Deletes every key of `prefix` (on every master of a cluster). */
async function dropKeys(redis: Connection, prefix: string): Promise<void> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      // One key per DEL: on a cluster, keys of one call must share a slot.
      for (const key of keys) await node.del(key);
    } while (cursor !== '0');
  }
}

/** A presence table on a fresh prefix whose close() also deletes its keys. */
function tableOn(redis: Connection, opts: { now: () => number; leaseMs?: number; prefix?: string }): Presence {
  const prefix = opts.prefix ?? uniquePrefix('presence');
  const p = createRedisPresence({ redis, prefix, now: opts.now, leaseMs: opts.leaseMs });
  return {
    ...p,
    async close() {
      await p.close();
      if (opts.prefix === undefined) await dropKeys(redis, prefix);
    },
  };
}

/** Runs the conformance suite and the Redis-only tests on connections made by `connect`. */
function redisSuite(t: Test, name: string, connect: () => Connection): void {
  const connections: Connection[] = [];
  const open = () => {
    const c = connect();
    connections.push(c);
    return c;
  };
  const shared = open();
  t.teardown(async () => {
    for (const c of connections) await c.quit();
  });

  presenceConformance(t, name, async ({ now }) => tableOn(shared, { now }));

  t.test(`${name}: an owner that never refreshed holds the default lease`, async (t) => {
    let time = 1_000;
    const p = tableOn(shared, { now: () => time, leaseMs: 500 });
    t.teardown(() => p.close());
    await p.join('s:1', 'alice', 'i/0/1');
    time += 499;
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }]);
    time += 1;
    t.same(await p.list('s:1'), [], 'lapsed after leaseMs');
    t.same(await p.expire(), [{ session: 's:1', user: 'alice' }]);
  });

  t.test(`${name}: two instances share one table`, async (t) => {
    let time = 1_700_000_000_000;
    const now = () => time;
    const prefix = uniquePrefix('presence');
    // Two instances, each with its own connection, on the same prefix.
    const a = tableOn(open(), { now, prefix });
    const b = tableOn(shared, { now, prefix });
    t.teardown(async () => {
      await a.close();
      await b.close();
      await dropKeys(shared, prefix);
    });
    const A = presenceOwner('inst-a', 0, 1);
    const B = presenceOwner('inst-b', 0, 1);
    t.equal(await a.refresh(A, 1000), false);
    t.equal(await b.refresh(B, 1000), false);

    t.equal(await a.join('s:1', 'alice', A), true, 'alice arrives through instance A');
    t.equal(await b.join('s:1', 'alice', B), false, 'her tab on instance B is no arrival');
    t.equal(await b.join('s:1', 'bob', B), true);
    t.equal(await b.join('s:2', 'carol', B), true);
    t.equal(await a.join('s:2', 'dave', A), true);
    const both = [{ u: 'alice', n: 2 }, { u: 'bob', n: 1 }];
    t.same(await a.list('s:1'), both, 'A sees B\'s users');
    t.same(await b.list('s:1'), both, 'B sees A\'s users');
    t.equal(await a.leave('s:1', 'bob', A), false, 'A cannot take a connection B holds');
    t.equal(await b.leave('s:1', 'alice', B), false, 'alice stays through A');
    t.same(await b.list('s:1'), [{ u: 'alice', n: 1 }, { u: 'bob', n: 1 }]);

    // B's shard stops refreshing: its lease lapses by the clock both share.
    time += 600;
    t.equal(await a.refresh(A, 1000), true);
    time += 400;
    t.same(await a.list('s:2'), [{ u: 'dave', n: 1 }], 'carol left with B\'s lapsed lease, seen from A');
    t.same(await b.list('s:2'), [{ u: 'dave', n: 1 }], 'and from B');
    const first = await b.expire();
    const second = await a.expire();
    t.same(first.map((d) => `${d.session}/${d.user}`).sort(), ['s:1/bob', 's:2/carol'], 'the first sweep reports the departures');
    t.same(second, [], 'the other instance\'s sweep gets nothing');
    t.same(await b.expire(), [], 'nor does a later one');
    t.same(await b.dropOwner(B), [], 'dropping the lapsed owner after the sweep reports nothing');

    // The same race the other way round, with the sweeps concurrent.
    t.equal(await b.refresh(B, 1000), false, 'B starts a new lease');
    t.equal(await b.join('s:3', 'erin', B), true);
    t.equal(await a.join('s:3', 'frank', A), true);
    time += 1000; // both lapse now
    const [fromA, fromB] = await Promise.all([a.expire(), b.expire()]);
    t.same([...fromA, ...fromB].map((d) => `${d.session}/${d.user}`).sort(), ['s:1/alice', 's:2/dave', 's:3/erin', 's:3/frank'], 'each departure once, from either instance');
    t.ok(fromA.length === 0 || fromB.length === 0, 'one sweep took them all, the other got nothing');
  });

  t.test(`${name}: a prefix with a brace is refused (it would move the hash tag)`, async (t) => {
    t.throws(() => createRedisPresence({ redis: shared, prefix: 'x{y}:' }), /must not contain/);
    t.throws(() => createRedisPresence({ redis: shared, prefix: 'p:', leaseMs: 0 }), RangeError);
  });
}

t.test('redis (standalone, RESP3)', async (t) => {
  redisSuite(t, 'redis', () => new Redis(REDIS_URL));
});

t.test('redis (standalone, RESP2)', async (t) => {
  redisSuite(t, 'redis resp2', () => new Redis(REDIS_URL, { protocol: 2 }));
});

t.test('redis cluster', async (t) => {
  if (!(await redisClusterUp())) {
    t.fail(`the local Redis Cluster (${REDIS_CLUSTER_NODES.join(', ')}) is not up: run deploy/services.sh`);
    return;
  }
  redisSuite(t, 'redis cluster', () => {
    const nodes = REDIS_CLUSTER_NODES.map((n) => {
      const [host, port] = n.split(':');
      return { host, port: Number(port) };
    });
    return new Cluster(nodes, { redisOptions: { protocol: 2 } });
  });
});
