// Events in through RabbitMQ, end to end: daemon processes on one Redis consume the
// partitions of an events exchange of their own (tests share the machine's broker)
// while upstream publishers, knowing nothing of the instances, publish with
// confirms. Every confirmed event reaches every client once, in order, across a
// killed consumer, a broker restart, a crash between store and ack, poison
// messages and a drain with deliveries in flight.
import t, { type Test } from 'tap';
import { EventPublisher, type UpstreamEvent } from '../../protocol/upstream/amqp-publisher.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from 'amqplib';
import { DaemonProcess } from '../support/daemon-process.js';
import { fanOut, Follower, range, redisEnv, startInstances } from '../support/instances.js';
import { AMQP_URL, amqpEnv, deleteTopology, startRabbitMQ, stopRabbitMQ, takeDeadLetters, uniqueExchange } from '../support/rabbitmq.js';
import { RawClient } from '../support/raw-client.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { startRedisServer } from '../support/redis-server.js';
import { holdServiceLock } from '../support/service-lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

/** Instances on the shared Redis consuming a fresh exchange; both are cleaned up at teardown. */
async function cluster(t: Test, n: number, name: string, partitions = 2, extra: Record<string, string> = {}) {
  const exchange = uniqueExchange(name);
  t.teardown(() => deleteTopology(exchange, partitions));
  const env = { ...redisEnv(REDIS_URL, uniquePrefix(name)), ...amqpEnv(exchange, partitions), ...extra };
  // One at a time: the first to consume a partition is its active consumer.
  const instances: DaemonProcess[] = [];
  for (let i = 0; i < n; i++) instances.push(...(await startInstances(1, env)));
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const publisher = await EventPublisher.connect(AMQP_URL, exchange);
  t.teardown(() => publisher.close());
  return { exchange, instances, publisher, env };
}

t.test('300 clients on 3 instances; 200 events published to the exchange with confirms reach each once, in order', async (t) => {
  const { instances, publisher } = await cluster(t, 3, 'fanout');
  await fanOut(t, instances, ['quiz:rmq-a', 'quiz:rmq-b'], 300, 200, async (events) => {
    for (const e of events) publisher.send(e);
    await publisher.confirmed();
  });
});

t.test('50 sessions from 3 publishers at once: per-session order for every client, and each publisher\'s order kept', async (t) => {
  const { instances, exchange } = await cluster(t, 3, 'orders', 4);
  const sessions = range(1, 50).map((i) => `room:${i}`);
  const clients = await Promise.all(range(0, 14).map((i) => RawClient.connect(instances[i % 3].ws, { user: `u${i}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  await Promise.all(clients.map(async (c) => {
    for (const s of sessions) await c.join(s);
  }));
  const publishers = await Promise.all(range(0, 2).map(() => EventPublisher.connect(AMQP_URL, exchange)));
  t.teardown(() => Promise.all(publishers.map((p) => p.close())));
  const PER = 10;
  await Promise.all(publishers.map(async (p, k) => {
    for (let n = 1; n <= PER; n++) {
      for (const s of sessions) p.send({ session: s, type: 'm', data: { k, n }, id: `${k}-${n}` }, k === 1 ? 'msgpack' : 'json');
      await p.confirmed();
    }
  }));
  const total = PER * publishers.length;
  for (const c of clients) await c.until((fs) => sessions.every((s) => fs.filter((f) => f.t === 'ev' && f.s === s).length >= total), 30_000, 'every session complete');
  await sleep(200);
  let ok = 0;
  for (const [i, c] of clients.entries()) {
    for (const s of sessions) {
      const evs = c.events(s);
      const dense = evs.map((e) => e.seq).join() === range(1, total).join();
      const perPublisher = range(0, 2).every((k) => {
        const ns = evs.map((e) => e.data as { k: number; n: number }).filter((d) => d.k === k).map((d) => d.n);
        return ns.join() === range(1, PER).join();
      });
      if (dense && perPublisher) ok++;
      else t.fail(`client ${i}, ${s}: ${evs.map((e) => `${e.seq}:${JSON.stringify(e.data)}`).join(' ')}`);
    }
  }
  t.equal(ok, 15 * 50, 'all 750 (client, session) streams: seqs 1..30 once, in order, each publisher\'s events in its order');
});

t.test('kill -9 of the instance holding the partitions: another takes over; no confirmed event lost, none twice for resuming clients', async (t) => {
  const { instances, publisher } = await cluster(t, 3, 'kill');
  const [a, b, c] = instances;
  const S = 'quiz:rmq-kill';
  const stay = range(1, 10).map((i) => new Follower(S, `s${i}`));
  const moving = range(1, 10).map((i) => new Follower(S, `m${i}`));
  await Promise.all(stay.map((f, i) => f.connect(i % 2 ? b : c)));
  await Promise.all(moving.map((f) => f.connect(a)));
  const TOTAL = 150;
  for (let n = 1; n <= TOTAL; n++) {
    // A took the partitions first: it is their single active consumer.
    if (n === 60) a.proc.kill('SIGKILL');
    await publisher.publish({ session: S, type: 'q', data: n, id: `k${n}` });
    if (n % 10 === 0) await sleep(5);
  }
  await a.exited;
  for (const f of moving) {
    await f.client.closed;
    f.collect();
  }
  await Promise.all(moving.map((f, i) => f.connect(i % 2 ? b : c)));
  const all = [...stay, ...moving];
  await Promise.all(all.map((f) => f.reach(TOTAL, 20_000)));
  await sleep(200);
  for (const f of all) f.collect();
  t.same(all.filter((f) => f.seqs.join() !== range(1, TOTAL).join()).map((f) => `${f.user}: ${f.seqs.length}`), [], 'all 20 clients got 1..150 once, in order');
  t.ok(moving.every((f) => f.joins[1].rec), 'the resumes after the kill were recovered');
});

t.test('RabbitMQ restarted while events flow: every confirmed event is delivered, consumers come back by themselves', async (t) => {
  const { instances, exchange } = await cluster(t, 2, 'restart');
  const [a, b] = instances;
  const S = 'quiz:rmq-restart';
  const followers = range(1, 10).map((i) => new Follower(S, `r${i}`));
  await Promise.all(followers.map((f, i) => f.connect(i % 2 ? a : b)));
  // An upstream that reconnects and publishes again, with the same message_id,
  // whatever was not confirmed.
  let publisher: EventPublisher | null = null;
  t.teardown(() => publisher?.close());
  const publishReliably = async (e: UpstreamEvent) => {
    for (;;) {
      try {
        publisher ??= await EventPublisher.connect(AMQP_URL, exchange);
        await publisher.publish(e);
        return;
      } catch {
        await publisher?.close();
        publisher = null;
        await sleep(250);
      }
    }
  };
  const TOTAL = 100;
  for (let n = 1; n <= 30; n++) await publishReliably({ session: S, type: 'q', data: n, id: `r${n}` });
  // Down for 2 s mid-stream; the publisher keeps trying meanwhile. Started again
  // whatever happens, so the machine's broker is left running.
  await stopRabbitMQ();
  const restarted = sleep(2000).then(startRabbitMQ);
  t.teardown(() => restarted.catch(startRabbitMQ));
  const ready = async (d: DaemonProcess) => (await fetch(`${d.http}/readyz`)).status;
  let sawUnready = false;
  for (let n = 31; n <= TOTAL; n++) {
    if (!sawUnready) sawUnready = (await ready(a)) === 503;
    await publishReliably({ session: S, type: 'q', data: n, id: `r${n}` });
  }
  await restarted;
  t.ok(sawUnready, '/readyz answered 503 while RabbitMQ was down');
  await Promise.all(followers.map((f) => f.reach(TOTAL, 60_000)));
  await sleep(200);
  for (const f of followers) f.collect();
  t.same(followers.filter((f) => f.seqs.join() !== range(1, TOTAL).join()).map((f) => `${f.user}: ${f.seqs.length}`), [], 'every client got 1..100 once, in order');
  for (const [name, d] of [['A', a], ['B', b]] as const) {
    const deadline = Date.now() + 40_000;
    while ((await ready(d)) !== 200 && Date.now() < deadline) await sleep(200);
    t.equal(await ready(d), 200, `instance ${name} is ready again without a restart`);
    const count = (msg: string) => d.lines.filter((l) => l.msg === msg).length;
    t.same([count('rabbitmq unreachable: events wait in their queues until it is back'), count('rabbitmq reachable again: consuming')], [1, 1], `instance ${name} logged the outage once at each end`);
  }
});

t.test('a consumer that dies between storing and acking: the redelivery is not delivered again', async (t) => {
  const { instances, publisher } = await cluster(t, 2, 'crash', 2, { SHARDCAST_TEST_HOOKS: 'true' });
  const [a, b] = instances;
  const S = 'quiz:rmq-crash';
  const followers = range(1, 5).map((i) => new Follower(S, `c${i}`));
  await Promise.all(followers.map((f) => f.connect(b)));
  for (let n = 1; n <= 5; n++) await publisher.publish({ session: S, type: 'q', data: n, id: `c${n}` });
  // Stored by A, which then dies before its ack: RabbitMQ redelivers it to B.
  await publisher.publishRaw(S, Buffer.from(JSON.stringify({ type: 'q', data: 6 })), { contentType: 'application/json', messageId: 'c6', headers: { 'x-shardcast-test': 'exit-after-store' } });
  const exit = await a.exited;
  t.equal(exit.signal, 'SIGKILL', 'A died right after storing');
  for (let n = 7; n <= 10; n++) await publisher.publish({ session: S, type: 'q', data: n, id: `c${n}` });
  await Promise.all(followers.map((f) => f.reach(10, 20_000)));
  await sleep(300);
  for (const f of followers) f.collect();
  t.same(followers.map((f) => f.seqs.join()), followers.map(() => range(1, 10).join()), 'seqs 1..10: the redelivered event took no second seq');
  t.same(followers[0].client.events(S).map((e) => e.data), range(1, 10), 'and each event arrived once');
});

t.test('poison messages go to the dead-letter queue with their reason; the partition keeps flowing', async (t) => {
  // A low maxPublishValues, so that a message over it is small.
  const { instances, publisher, exchange } = await cluster(t, 1, 'poison', 1, { SHARDCAST_MAX_PUBLISH_VALUES: '100' });
  const [a] = instances;
  const S = 'quiz:rmq-poison';
  const client = await RawClient.connect(a.ws, { user: 'watcher' });
  t.teardown(() => client.close());
  await client.join(S);
  await publisher.publish({ session: S, type: 'q', data: 1 });
  await publisher.publishRaw(S, Buffer.from('{"type": "q", "data": '), { contentType: 'application/json' });
  await publisher.publishRaw(S, Buffer.from(JSON.stringify({ data: 2 })), { contentType: 'application/json' });
  await publisher.publishRaw('not a session!', Buffer.from(JSON.stringify({ type: 'q', data: 3 })), { contentType: 'application/json' });
  await publisher.publishRaw(S, Buffer.from('<q/>'), { contentType: 'text/xml' });
  await publisher.publishRaw(S, Buffer.from(JSON.stringify({ type: 'q', data: Array.from({ length: 100 }, () => 0) })), { contentType: 'application/json' });
  await publisher.publish({ session: S, type: 'q', data: 2 });
  await publisher.publish({ session: S, type: 'q', data: 3 });
  await client.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 3), 10_000, 'seq 3');
  t.same(client.events(S).map((e) => [e.seq, e.data]), [[1, 1], [2, 2], [3, 3]], 'the valid events behind the poison ones flowed, in order');
  let dead: Awaited<ReturnType<typeof takeDeadLetters>> = [];
  for (let i = 0; i < 50 && dead.length < 5; i++) {
    dead = dead.concat(await takeDeadLetters(exchange, 1));
    if (dead.length < 5) await sleep(100);
  }
  t.equal(dead.length, 5, 'the five poison messages are in the dead-letter queue');
  t.match(dead[0].reason, /body is not valid JSON/, `bad JSON: ${dead[0].reason}`);
  t.match(dead[1].reason, /type/, `missing type: ${dead[1].reason}`);
  t.match(dead[2].reason, /session must be/, `bad session: ${dead[2].reason}`);
  t.match(dead[3].reason, /unsupported content-type "text\/xml"/, `bad content type: ${dead[3].reason}`);
  t.match(dead[4].reason, /^data: value: more than 100 values \(maxPublishValues;/, `data over maxPublishValues: ${dead[4].reason}`);
  t.equal(dead[2].routingKey, 'not a session!', 'with their routing key and body untouched');
  t.equal(a.lines.filter((l) => l.msg === 'event refused: sent to the dead-letter queue').length, 5, 'one log line each');
});

t.test('SIGTERM with deliveries not yet stored: they go back to RabbitMQ and another instance delivers them; nothing lost', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.close());
  const exchange = uniqueExchange('drain');
  t.teardown(() => deleteTopology(exchange, 2));
  const env = { ...redisEnv(redis.url, 'drain:'), ...amqpEnv(exchange, 2) };
  const [a] = await startInstances(1, env);
  const [b] = await startInstances(1, env);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const publisher = await EventPublisher.connect(AMQP_URL, exchange);
  t.teardown(() => publisher.close());
  const S = 'quiz:rmq-drain';
  const client = await RawClient.connect(b.ws, { user: 'watcher' });
  t.teardown(() => client.close());
  await client.join(S);
  for (let n = 1; n <= 3; n++) await publisher.publish({ session: S, type: 'q', data: n, id: `d${n}` });
  await client.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 3), 10_000, 'seq 3');

  // Redis goes away: A (the active consumer) keeps the next deliveries unacked.
  await redis.stop();
  for (let n = 4; n <= 8; n++) await publisher.publish({ session: S, type: 'q', data: n, id: `d${n}` });
  await a.waitForLine((l) => l.msg === 'events could not be stored: kept unacked and retried in order', 10_000);
  const exit = await a.stop('SIGTERM');
  const stopped = a.lines.find((l) => l.msg === 'rabbitmq ingress stopped; unacked deliveries returned to their queues');
  t.ok((stopped?.returned as number) >= 1, `A returned ${stopped?.returned} deliveries it had not stored`);
  t.ok(exit.code !== null, 'A exited');
  await redis.restart();
  // B, now the active consumer, stores them once Redis answers. Redis came back
  // empty, so they open a new epoch: connected clients get a resync (not recovered),
  // and the new epoch's history holds exactly the returned events.
  let head = { ep: '', seq: 0 };
  for (let i = 0; i < 150 && head.seq < 5; i++) {
    const probe = await RawClient.connect(b.ws, { user: 'probe' });
    const j = await probe.join(S);
    if (j.t === 'joined') head = { ep: j.ep, seq: j.seq };
    await probe.close();
    if (head.seq < 5) await sleep(200);
  }
  t.equal(head.seq, 5, 'the five returned events were stored by B');
  const reader = await RawClient.connect(b.ws, { user: 'reader' });
  t.teardown(() => reader.close());
  await reader.join(S, { ep: head.ep, seq: 0 });
  await reader.until((fs) => fs.filter((f) => f.t === 'ev').length >= 5, 10_000, 'the replay');
  t.same(reader.events(S).map((e) => e.data), [4, 5, 6, 7, 8], 'events 4..8, each once, in order');
  await client.until((fs) => fs.some((f) => (f.t === 'resync' || f.t === 'ev') && f.ep === head.ep), 10_000, 'the new epoch');
  t.pass('the connected client moved to the new epoch, never a silent gap');
});

t.test('a drain while events flow hands the partitions over in order: no reordering, nothing lost', async (t) => {
  const { instances, publisher } = await cluster(t, 2, 'handover');
  const [a, b] = instances;
  const S = 'quiz:rmq-handover';
  const client = await RawClient.connect(b.ws, { user: 'watcher' });
  t.teardown(() => client.close());
  await client.join(S);
  const TOTAL = 400;
  let drained: Promise<unknown> | null = null;
  for (let n = 1; n <= TOTAL; n++) {
    publisher.send({ session: S, type: 'q', data: n, id: `h${n}` });
    if (n % 20 === 0) await publisher.confirmed();
    if (n === 100) drained = a.stop('SIGTERM');
  }
  await publisher.confirmed();
  await drained;
  await client.until((fs) => fs.filter((f) => f.t === 'ev').length >= TOTAL, 30_000, `${TOTAL} events`);
  await sleep(200);
  const evs = client.events(S);
  t.same(evs.map((e) => e.seq), range(1, TOTAL), 'seqs 1..400 once');
  t.same(evs.map((e) => e.data), range(1, TOTAL), 'in the order they were published, across the handover');
});

t.test('fewer partitions than the exchange has: refused at start, naming the queue and what to do', async (t) => {
  const exchange = uniqueExchange('shrink');
  t.teardown(() => deleteTopology(exchange, 3));
  const env = { ...redisEnv(REDIS_URL, uniquePrefix('shrink')), ...amqpEnv(exchange, 3) };
  const [first] = await startInstances(1, env);
  await first.stop();
  const main = fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url));
  const d = new DaemonProcess(
    spawn(process.execPath, [main], {
      env: { PATH: process.env.PATH, SHARDCAST_PORT: '0', SHARDCAST_DEV_MODE: 'true', SHARDCAST_SHARDS: '1', ...env, SHARDCAST_AMQP_PARTITIONS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const exit = await d.exited;
  t.equal(exit.code, 1, 'it does not start');
  const fatal = d.lines.find((l) => l.level === 60);
  t.match((fatal?.err as { message?: string } | undefined)?.message, new RegExp(`queue ${exchange.replace(/\./g, '\\.')}\\.p2 exists .*SHARDCAST_AMQP_PARTITIONS=2`), 'the message names the extra queue and the setting');
});

t.test('a partition queue deleted under a running instance is declared again and consumed', async (t) => {
  const { instances, publisher, exchange } = await cluster(t, 1, 'deleted', 1);
  const [a] = instances;
  const S = 'quiz:rmq-deleted';
  const client = await RawClient.connect(a.ws, { user: 'watcher' });
  t.teardown(() => client.close());
  await client.join(S);
  await publisher.publish({ session: S, type: 'q', data: 1 });
  await client.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 1), 10_000, 'seq 1');
  const conn = await connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.deleteQueue(`${exchange}.p0`);
  await conn.close();
  await a.waitForLine((l) => l.msg === 'rabbitmq cancelled the consumer of a partition (queue deleted?)', 10_000);
  // A publish before the queue exists again would be dropped by the exchange.
  await a.waitForLine((l) => l.msg === 'rabbitmq channel reopened', 15_000);
  const deadline = Date.now() + 5000;
  while ((await fetch(`${a.http}/readyz`)).status !== 200 && Date.now() < deadline) await sleep(100);
  t.equal((await fetch(`${a.http}/readyz`)).status, 200, 'ready: the queue was declared again and is consumed');
  await publisher.publish({ session: S, type: 'q', data: 2 });
  await client.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 2), 10_000, 'seq 2');
  t.pass('events flow again');
});
