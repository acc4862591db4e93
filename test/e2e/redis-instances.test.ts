// Many instances as one, end to end, on the machine's Redis: daemon processes (2
// shards each) share a key prefix; clients on every instance get what was published
// through any of them, each seq once and in order, across joins under load, a move
// between instances, and the loss of an instance (kill -9), whose users then leave
// presence within the lease.
import t from 'tap';
import { Redis } from 'ioredis';
import type { PresenceFrame } from '../../protocol/frames.js';
import { RawClient } from '../support/raw-client.js';
import { fanOut, Follower, range, redisEnv, startInstances } from '../support/instances.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('300 clients on 3 instances, joining while 200 events are published through one: every seq once, in order', async (t) => {
  const instances = await startInstances(3, redisEnv(REDIS_URL, uniquePrefix('fanout')));
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  await fanOut(t, instances, ['quiz:fanout'], 300, 200);
});

t.test('50 sessions published through all three instances at once: per-session order for every client', async (t) => {
  const prefix = uniquePrefix('orders');
  const instances = await startInstances(3, redisEnv(REDIS_URL, prefix));
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const sessions = range(1, 50).map((i) => `room:${i}`);
  const clients = await Promise.all(range(0, 29).map((i) => RawClient.connect(instances[i % 3].ws, { user: `u${i}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  await Promise.all(clients.map(async (c) => {
    for (const s of sessions) {
      const joined = await c.join(s);
      if (joined.t !== 'joined') throw new Error(`join ${s}: ${JSON.stringify(joined)}`);
    }
  }));
  const PER_SESSION = 20;
  // Each instance publishes batches into every session, interleaved with the others.
  await Promise.all(instances.map(async (d, k) => {
    for (let round = 0; round < PER_SESSION / 4; round++) {
      const events = sessions.flatMap((s) => range(1, 4).map((n) => ({ session: s, type: 'm', data: { from: k, n } })));
      const r = await d.publish({ events: events.filter((_, i) => i % 3 === k || round % 2 === 0) });
      if (r.status !== 200) throw new Error(`instance ${k}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }));
  const heads = new Map<string, number>();
  for (const s of sessions) {
    const r = await instances[0].publish({ session: s, type: 'end', data: null });
    heads.set(s, r.body.seq as number);
  }
  for (const c of clients) {
    await c.until((fs) => sessions.every((s) => fs.some((f) => f.t === 'ev' && f.s === s && f.seq === heads.get(s))), 20_000, 'every session at its head');
  }
  await sleep(200);
  let checked = 0;
  for (const [i, c] of clients.entries()) {
    for (const s of sessions) {
      const seqs = c.events(s).map((e) => e.seq);
      if (seqs.join() !== range(1, heads.get(s)!).join()) t.fail(`client ${i}, ${s}: got ${seqs.join(',')}`);
      else checked++;
    }
  }
  t.equal(checked, 30 * 50, 'all 1,500 (client, session) streams are complete and in seq order');
  // One Redis delivery per (event, instance): each instance holds one subscription
  // per session, whatever its number of shards and clients.
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.quit());
  const numsub = (await redis.pubsub('NUMSUB', ...sessions.slice(0, 5).map((s) => `${prefix}{${s}}:c`))) as Array<string | number>;
  t.same(numsub.filter((_, i) => i % 2 === 1).map(Number), [3, 3, 3, 3, 3], 'each session channel has exactly 3 subscribers: one per instance');
  t.ok([...heads.values()].every((h) => h > PER_SESSION), 'each session got events from several instances');
});

t.test('a client that moves from instance A to B resumes with (epoch, seq): no gap, no duplicate', async (t) => {
  const [a, b] = await startInstances(2, redisEnv(REDIS_URL, uniquePrefix('move')));
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const S = 'quiz:move';
  const TOTAL = 150;
  const movers = range(1, 20).map((i) => new Follower(S, `m${i}`));
  await Promise.all(movers.map((f) => f.connect(a)));
  const publishing = (async () => {
    for (let n = 1; n <= TOTAL; n++) {
      await (n % 2 === 0 ? a : b).publish({ session: S, type: 'q', data: n });
      await sleep(5);
    }
  })();
  await sleep(300);
  // Mid-stream: each drops its socket (a phone changing networks) and resumes on B.
  for (const f of movers) {
    f.collect();
    f.client.terminate();
    await f.client.closed;
  }
  await sleep(100);
  await Promise.all(movers.map((f) => f.connect(b)));
  await publishing;
  await Promise.all(movers.map((f) => f.reach(TOTAL)));
  await sleep(200);
  for (const f of movers) f.collect();
  t.ok(movers.every((f) => f.joins[1].rec), 'every resume on B was recovered');
  t.ok(movers.every((f) => f.joins[1].seq > 0 && f.joins[1].seq < TOTAL), 'the move happened mid-stream');
  t.same(movers.filter((f) => f.seqs.join() !== range(1, TOTAL).join()).map((f) => f.user), [], 'each got 1..150 once, in order, across the move');
  await Promise.all(movers.map((f) => f.client.close()));
});

t.test('kill -9 of an instance mid-stream: its clients resume elsewhere with every seq once; its users leave presence within the lease', async (t) => {
  const LEASE_MS = 3000;
  const instances = await startInstances(3, { ...redisEnv(REDIS_URL, uniquePrefix('kill')), SHARDCAST_PRESENCE_LEASE_MS: String(LEASE_MS) });
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const [a, b, c] = instances;
  const S = 'quiz:kill';
  const P = 'chat:kill-presence';
  const followers = range(1, 30).map((i) => new Follower(S, `k${i}`));
  await Promise.all(followers.map((f, i) => f.connect(instances[i % 3])));
  // Users present only through C, and an observer on A.
  const onC = await Promise.all(range(1, 5).map((i) => RawClient.connect(c.ws, { user: `gone${i}` })));
  for (const x of onC) await x.join(P);
  const observer = await RawClient.connect(a.ws, { user: 'observer' });
  t.teardown(() => observer.close());
  await observer.join(P);
  const presence = async () => {
    const id = observer.id();
    observer.send({ t: 'presence', id, s: P });
    const f = (await observer.next((x) => x.t === 'presence' && x.id === id)) as PresenceFrame;
    return f.users.map((u) => u.u).sort();
  };
  t.same(await presence(), ['gone1', 'gone2', 'gone3', 'gone4', 'gone5', 'observer'], 'users on C are present on A');

  const TOTAL = 150;
  let killedAt = 0;
  const publishing = (async () => {
    for (let n = 1; n <= TOTAL; n++) {
      await (n % 2 === 0 ? a : b).publish({ session: S, type: 'q', data: n });
      if (n === 50) {
        c.proc.kill('SIGKILL');
        killedAt = Date.now();
      }
      await sleep(5);
    }
  })();
  await c.exited;
  const orphans = followers.filter((_, i) => i % 3 === 2);
  for (const f of orphans) {
    await f.client.closed;
    f.collect();
  }
  // Reconnect where a load balancer would send them: the instances left.
  await Promise.all(orphans.map((f, i) => f.connect(i % 2 === 0 ? a : b)));
  await publishing;
  await Promise.all(followers.map((f) => f.reach(TOTAL)));
  await sleep(200);
  for (const f of followers) f.collect();
  t.ok(orphans.every((f) => f.joins[1].rec), "every resume of C's clients was recovered from history");
  t.same(followers.filter((f) => f.seqs.join() !== range(1, TOTAL).join()).map((f) => f.user), [], 'all 30 clients got 1..150 once, in order');

  const deadline = killedAt + LEASE_MS + 3000;
  let users = await presence();
  while (users.some((u) => u.startsWith('gone')) && Date.now() < deadline) {
    await sleep(200);
    users = await presence();
  }
  t.same(users, ['observer'], `C's users left presence ${Date.now() - killedAt} ms after the kill (lease ${LEASE_MS} ms)`);
  for (const x of onC) x.terminate();
  await Promise.all(followers.map((f) => f.client.close()));
});

t.test('presence and pjoin/pleave notices across instances', async (t) => {
  const instances = await startInstances(2, {
    ...redisEnv(REDIS_URL, uniquePrefix('notices')),
    SHARDCAST_NAMESPACES: JSON.stringify([{ prefix: 'chat:', joinLeave: true }]),
  });
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const [a, b] = instances;
  const S = 'chat:lobby';
  const alice = await RawClient.connect(a.ws, { user: 'alice' });
  t.teardown(() => alice.close());
  await alice.join(S);
  const bob = await RawClient.connect(b.ws, { user: 'bob' });
  const joined = await bob.join(S, { pres: true });
  t.same(joined.t === 'joined' ? joined.pres?.map((p) => p.u).sort() : null, ['alice', 'bob'], "bob's joined lists alice, present through the other instance");
  await alice.until((fs) => fs.some((f) => f.t === 'pjoin' && f.u === 'bob'), 5000, 'pjoin of bob');
  t.pass('alice on A hears bob join on B');
  await bob.close();
  await alice.until((fs) => fs.some((f) => f.t === 'pleave' && f.u === 'bob'), 5000, 'pleave of bob');
  t.pass('and leave');
  const id = alice.id();
  alice.send({ t: 'presence', id, s: S });
  const list = (await alice.next((f) => f.t === 'presence' && f.id === id)) as PresenceFrame;
  t.same(list.users.map((u) => u.u), ['alice'], 'presence is shared');
});
