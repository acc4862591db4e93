// The shared Broker suite on the Redis broker, against the machine's Redis and the
// local 3-master Redis Cluster (deploy/services.sh starts both), plus what only a
// shared backend shows: two instances on one Redis see each other's events with
// the very same bytes, the snapshot-key bound, idle expiry, and a subscription that
// is dropped or goes deaf is restored and reported as `resubscribed`.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { PublishRefused, type PublishRequest } from '../../daemon/engine/broker.js';
import { connectRedis, type RedisLink } from '../../daemon/engine/redis-connection.js';
import { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from '../../daemon/engine/redis-broker.js';
import { slotOf } from '../../daemon/engine/redis-slot.js';
import { REDIS_CLUSTER_NODES, REDIS_URL, redisClusterUp, uniquePrefix } from '../support/redis.js';
import { brokerConformance, eventually, eventOf, recorder, sleep, type Recording } from './broker.js';

const log = pino({ level: 'silent' });
const CLUSTER = REDIS_CLUSTER_NODES.join(',');

interface Made {
  broker: RedisBroker;
  link: RedisLink;
  close(): Promise<void>;
}

/** A broker on its own link; `prefix` shares keys with another broker when given. */
async function make(target: { url: string; cluster: boolean }, prefix: string, extra: Partial<RedisBrokerOptions> = {}): Promise<Made> {
  const instanceId = randomBytes(4).toString('hex');
  const link = connectRedis(target, instanceId, log);
  await link.ready(5000);
  const broker = createRedisBroker({ link, prefix, instanceId, historySizeFor: () => 100, sessionTtlMs: 3_600_000, log, ...extra });
  return {
    broker,
    link,
    async close() {
      await broker.stop(Date.now());
      await link.close();
    },
  };
}

const STANDALONE = { url: REDIS_URL, cluster: false };
const CLUSTERED = { url: CLUSTER, cluster: true };

brokerConformance(t, 'redis', async ({ historySize }) => {
  const m = await make(STANDALONE, uniquePrefix('broker'), { historySizeFor: () => historySize });
  return { broker: m.broker, lossless: true, close: m.close };
});

t.test('redis cluster', async (t) => {
  if (!(await redisClusterUp())) {
    t.fail(`no Redis Cluster answers at ${CLUSTER}: run deploy/services.sh (it starts one for the tests)`);
    return;
  }
  brokerConformance(t, 'redis cluster', async ({ historySize }) => {
    const m = await make(CLUSTERED, uniquePrefix('broker'), { historySizeFor: () => historySize });
    return { broker: m.broker, lossless: true, close: m.close };
  });
});

const ev = (session: string, n: number, extra: Partial<PublishRequest> = {}): PublishRequest => ({ session, type: 'tick', data: { n }, ...extra });

async function started(t: Test, target = STANDALONE, prefix = uniquePrefix('broker'), extra: Partial<RedisBrokerOptions> = {}): Promise<Made & { rec: Recording }> {
  const m = await make(target, prefix, extra);
  t.teardown(() => m.close());
  const rec = recorder();
  await m.broker.start(rec.handler);
  return { ...m, rec };
}

for (const [name, target] of [['redis', STANDALONE], ['redis cluster', CLUSTERED]] as const) {
  t.test(`${name}: an event published through one instance reaches another, with the same bytes`, async (t) => {
    if (target.cluster && !(await redisClusterUp())) return t.fail('no Redis Cluster: run deploy/services.sh');
    const prefix = uniquePrefix('two');
    const a = await started(t, target, prefix);
    const b = await started(t, target, prefix);
    // Sessions on every master of a cluster.
    const sessions = Array.from({ length: 12 }, (_, i) => `room:${i}`);
    for (const s of sessions) await b.broker.subscribe(s);
    const results = [];
    for (const s of sessions) for (let i = 1; i <= 5; i++) results.push(await a.broker.publish(ev(s, i, { id: `${s}-${i}` })));
    await eventually(() => b.rec.messages.length >= 60);
    for (const s of sessions) {
      const got = b.rec.of(s);
      t.same(got.map((m) => m.seq), [1, 2, 3, 4, 5], `${s}: every seq once, in order, on the other instance`);
      const h = await a.broker.history(s, { epoch: got[0].epoch, seq: 0 });
      t.same(got.map((m) => Buffer.from(m.frame).toString('hex')), h.entries.map((e) => Buffer.from(e.frame).toString('hex')), `${s}: the bytes the publisher stored`);
    }
    const again = await b.broker.publish(ev('room:0', 99, { id: 'room:0-1' }));
    t.same([again.duplicate, again.seq], [true, 1], 'an event id is deduplicated across instances');
    if (target.cluster) {
      const slots = new Set(sessions.map((s) => slotOf(`x{${s}}`)));
      t.ok(slots.size > 1, `the sessions spread over ${slots.size} slots`);
    }
  });
}

for (const [name, target] of [['redis', STANDALONE], ['redis cluster', CLUSTERED]] as const) {
  t.test(`${name}: the publishing instance gets its own events from the reply, the very message its bus copy carries`, async (t) => {
    if (target.cluster && !(await redisClusterUp())) return t.fail('no Redis Cluster: run deploy/services.sh');
    const m = await make(target, uniquePrefix('own'));
    t.teardown(() => m.close());
    const rec = recorder();
    const own: Recording['messages'] = [];
    await m.broker.start({
      ...rec.handler,
      ownEvent: (msg) => own.push({ ...msg, frame: Uint8Array.from(msg.frame), ...(msg.to !== undefined ? { to: [...msg.to] } : {}) }),
    });
    await m.broker.subscribe('own:s');
    const at = Date.now() + 60_000;
    const kinds: PublishRequest[] = [
      ev('own:s', 1),
      ev('own:s', 2, { to: ['alice', 'bob'], snapshot: 'k' }),
      ev('own:s', 3, { snapshot: 'score', conflate: true }),
      ev('own:s', 4, { at }),
      // Seqs past one byte take other msgpack formats in the frame.
      ...Array.from({ length: 300 }, (_, i) => ev('own:s', 5 + i)),
    ];
    for (const req of kinds) await m.broker.publish(req);
    const repeat = await m.broker.publish(ev('own:s', 1, { id: 'once' }));
    await m.broker.publish(ev('own:s', 1, { id: 'once' }));
    await eventually(() => rec.of('own:s').length === kinds.length + 1);
    t.equal(own.length, kinds.length + 1, 'one own event per stored event; none for the repeat of an event id');
    t.same(own, rec.of('own:s'), 'each is the bus copy, byte for byte, with its recipients, conflation key and release time');
    t.equal(own.at(-1)?.seq, repeat.seq);
    await m.broker.publish(ev('own:other', 1));
    t.equal(own.length, kinds.length + 1, 'nothing for a session this instance does not stream');
  });
}

t.test('redis: snapshot keys are bounded per session and per user', async (t) => {
  const { broker } = await started(t, STANDALONE, uniquePrefix('keys'), { maxSnapshotKeys: 2 });
  const refused = (p: Promise<unknown>) => p.then(() => 'stored', (err: unknown) => (err instanceof PublishRefused ? 'refused' : `other error: ${String(err)}`));
  await broker.publish(ev('s:k', 1, { snapshot: 'a' }));
  await broker.publish(ev('s:k', 2, { snapshot: 'b' }));
  t.equal(await refused(broker.publish(ev('s:k', 3, { snapshot: 'c' }))), 'refused', 'a third shared key is refused');
  const r = await broker.publish(ev('s:k', 4, { snapshot: 'a' }));
  t.equal(r.seq, 3, 'updating a key is not, and the refusal took no seq');
  await broker.publish(ev('s:k', 5, { snapshot: 'x', to: ['bob'] }));
  await broker.publish(ev('s:k', 6, { snapshot: 'y', to: ['bob'] }));
  t.equal(await refused(broker.publish(ev('s:k', 7, { snapshot: 'z', to: ['bob', 'carol'] }))), 'refused', "a third own key of bob's is refused");
  const carol = (await broker.history('s:k', null, 'carol')).snapshot ?? {};
  t.same(Object.keys(carol).sort(), ['a', 'b'], 'and carol got nothing from the refused event');
});

t.test('redis: idle sessions expire; streamed ones are kept alive', async (t) => {
  const { broker } = await started(t, STANDALONE, uniquePrefix('ttl'), { sessionTtlMs: 1000 });
  const gone = await broker.publish(ev('s:gone', 1, { snapshot: 'k' }));
  await broker.subscribe('s:kept');
  const kept = await broker.publish(ev('s:kept', 1));
  await sleep(2200);
  const after = await broker.position('s:gone');
  t.same([after.seq === 0, after.ep !== gone.epoch], [true, true], 'the idle session expired and comes back under a new epoch');
  const still = await broker.position('s:kept');
  t.same([still.seq, still.ep], [1, kept.epoch], 'a subscribed session is kept');
});

t.test('redis: resetEpoch loses the session the way an empty Redis does', async (t) => {
  const { broker, rec } = await started(t);
  await broker.subscribe('s:r');
  const old = await broker.publish(ev('s:r', 1, { snapshot: 'q', to: ['bob'] }));
  await broker.resetEpoch('s:r');
  const pos = await broker.position('s:r');
  t.not(pos.ep, old.epoch, 'a new epoch');
  t.equal(pos.seq, 0);
  const lost = await broker.history('s:r', old, 'bob');
  t.same([lost.complete, lost.snapshot], [false, {}], 'an old position is not complete, and the snapshot went too');
  const next = await broker.publish(ev('s:r', 2));
  t.same([next.seq, next.epoch], [1, pos.ep]);
  await eventually(() => rec.of('s:r').length >= 2);
  t.same(rec.of('s:r').map((m) => [m.epoch, m.seq]), [[old.epoch, 1], [pos.ep, 1]], 'subscribers see the epoch change');
  t.equal(eventOf(rec.of('s:r')[1].frame).ep, pos.ep);
});

t.test('redis: a killed subscriber connection comes back and says resubscribed', async (t) => {
  const { broker, link, rec } = await started(t);
  await broker.subscribe('s:kill');
  await broker.publish(ev('s:kill', 1));
  await eventually(() => rec.of('s:kill').length === 1);
  // Killed from another connection, as an operator (or a Redis failover) would.
  const command = link.command as import('ioredis').Redis;
  const list = (await command.client('LIST')) as string;
  const line = list.split('\n').find((l) => / name=shardcast-\S+-subscriber /.test(l) && l.includes(`name=${(command.options.connectionName ?? '').replace('command', 'subscriber')} `));
  t.ok(line, 'the subscriber connection is named in CLIENT LIST');
  await command.client('KILL', 'ID', /id=(\d+)/.exec(line ?? '')?.[1] ?? '0');
  await eventually(() => rec.resubscribed >= 1, 5000);
  await eventually(() => broker.health().ok, 5000);
  await broker.publish(ev('s:kill', 2));
  await eventually(() => rec.of('s:kill').length === 2, 5000);
  t.same(rec.of('s:kill').map((m) => m.seq), [1, 2], 'the session is subscribed again');
});

t.test('redis: a deaf subscription is noticed and restored', async (t) => {
  const { broker, link, rec } = await started(t, STANDALONE, uniquePrefix('deaf'), { heartbeatMs: 100, deafAfterMs: 600 });
  await broker.subscribe('s:deaf');
  // The server forgets the heartbeat subscription while the connection stays up.
  const channels = (await link.command.pubsub('CHANNELS', '*{hb:*')) as string[];
  t.ok(channels.length >= 1, 'a heartbeat channel is subscribed');
  await (link.subscriber as import('ioredis').Redis).unsubscribe(...channels);
  await eventually(() => !broker.health().ok, 3000);
  t.match(broker.health().detail, /deaf/, 'health names it');
  await eventually(() => rec.resubscribed >= 1, 5000);
  await eventually(() => broker.health().ok, 5000);
  await broker.publish(ev('s:deaf', 1));
  await eventually(() => rec.of('s:deaf').length === 1, 5000);
  t.pass('delivery resumed');
});
