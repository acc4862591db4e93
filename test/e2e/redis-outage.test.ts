// Redis failing under live sessions, end to end, on a private redis-server per test
// (never the shared one): Redis restarted empty while clients are connected, and
// the instances' Pub/Sub connections killed while events flow.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ResyncFrame, ServerFrame } from '../../protocol/frames.js';
import { DaemonProcess } from '../support/daemon-process.js';
import { Follower, range, redisEnv, startInstances } from '../support/instances.js';
import { RawClient } from '../support/raw-client.js';
import { redisCommand, startRedisServer } from '../support/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readyStatus(d: DaemonProcess): Promise<number> {
  return (await fetch(`${d.http}/readyz`)).status;
}

async function waitFor(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

t.test('Redis restarted empty: /readyz 503 meanwhile, publishes refused with 503, then a new epoch: resync for the connected, rec false for the resuming', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.close());
  const [a, b] = await startInstances(2, { ...redisEnv(redis.url, 'outage:'), SHARDCAST_PRESENCE_LEASE_MS: '3000' });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const S = 'quiz:restart';
  const connected = await Promise.all(range(1, 8).map((i) => RawClient.connect((i % 2 ? a : b).ws, { user: `c${i}` })));
  t.teardown(() => Promise.all(connected.map((c) => c.close())));
  for (const c of connected) await c.join(S);
  const away = range(1, 4).map((i) => new Follower(S, `away${i}`));
  await Promise.all(away.map((f, i) => f.connect(i % 2 ? a : b)));
  for (let i = 1; i <= 20; i++) await a.publish({ session: S, type: 'q', data: i, snapshot: 'question' });
  for (const c of connected) await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 20), 10_000, 'seq 20');
  await Promise.all(away.map((f) => f.reach(20)));
  const oldEpoch = away[0].epoch;
  for (const f of away) {
    f.client.terminate();
    await f.client.closed;
  }

  await redis.stop();
  await waitFor(async () => (await readyStatus(a)) === 503 && (await readyStatus(b)) === 503, 5000, '/readyz 503 on both');
  t.pass('/readyz answers 503 while Redis is down');
  const refused = await fetch(`${a.http}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: S, type: 'q', data: 'lost?', id: 'during' }) });
  t.equal(refused.status, 503, 'a publish while Redis is down is refused');
  t.equal(refused.headers.get('retry-after'), '1', 'with Retry-After');
  t.match(await refused.json(), { error: { code: 'unavailable' } });

  await redis.restart();
  await waitFor(async () => (await readyStatus(a)) === 200 && (await readyStatus(b)) === 200, 10_000, '/readyz 200 again');
  t.pass('ready again once Redis is back, without restarting Shardcast');
  for (const [name, d] of [['A', a], ['B', b]] as const) {
    const count = (msg: string) => d.lines.filter((l) => l.msg === msg && l.redis === 'command').length;
    t.same([count('redis unreachable: publishing is refused until it is back'), count('redis reachable again')], [1, 1], `instance ${name} logged the outage once when it began and once when it ended`);
  }
  let newEpoch = '';
  for (let i = 1; i <= 10; i++) {
    const r = await b.publish({ session: S, type: 'q2', data: i, snapshot: 'round' });
    t.equal(r.status, 200, `publish ${i} after the restart`);
    newEpoch = r.body.epoch as string;
  }
  t.not(newEpoch, oldEpoch, 'the session continues under a new epoch');

  for (const [i, c] of connected.entries()) {
    // Seq 10 of the new epoch, live or as the position of a resync that skipped it.
    await c.until((fs) => fs.some((f) => (f.t === 'ev' || f.t === 'resync') && f.ep === newEpoch && f.seq === 10), 10_000, `client ${i}: at seq 10 of the new epoch`);
    const resync = c.frames.find((f): f is ResyncFrame => f.t === 'resync' && f.s === S);
    if (!resync) {
      t.fail(`client ${i} got no resync`);
      continue;
    }
    const at = c.frames.indexOf(resync);
    const before = c.frames.slice(0, at).filter((f) => f.t === 'ev').map((f) => (f as { seq: number }).seq);
    const after = c.frames.slice(at + 1).filter((f): f is Extract<ServerFrame, { t: 'ev' }> => f.t === 'ev');
    t.same(before, range(1, 20), `client ${i}: the old epoch complete before the resync`);
    t.equal(resync.ep, newEpoch, `client ${i}: the resync names the new epoch`);
    t.same(after.map((e) => [e.ep, e.seq]), range(resync.seq + 1, 10).map((s) => [newEpoch, s]), `client ${i}: then every later seq of the new epoch once`);
    t.ok(resync.seq === 0 || resync.snap?.round !== undefined, `client ${i}: the snapshot covers what the resync skipped`);
  }
  // Presence went with Redis; each shard reports its connections again within a round.
  const everyone = range(1, 8).map((i) => `c${i}`).join();
  let present = '';
  const deadline = Date.now() + 5000;
  while (present !== everyone && Date.now() < deadline) {
    const id = connected[0].id();
    connected[0].send({ t: 'presence', id, s: S });
    const f = await connected[0].next((x) => x.t === 'presence' && x.id === id);
    present = f.t === 'presence' ? f.users.map((u) => u.u).sort().join() : '';
    if (present !== everyone) await sleep(200);
  }
  if (present !== everyone) {
    // What the instances logged about presence and Redis, to find the open bug below.
    for (const [name, d] of [['A', a], ['B', b]] as const) {
      for (const l of d.lines.filter((x) => /presence|lease|redis/i.test(String(x.msg)))) t.comment(`${name}: ${JSON.stringify(l).slice(0, 400)}`);
    }
    t.comment(`present: ${present}`);
  }
  // Once a bug: a shard asked to report while its members were resyncing (the new
  // epoch) skipped them, and one instance's users stayed absent.
  t.equal(present, everyone, 'the connected users are present again, on both instances, without reconnecting');
  for (const [i, f] of away.entries()) {
    await f.connect(i % 2 ? b : a);
    const joined = f.joins[1];
    t.same([joined.rec, joined.ep], [false, newEpoch], `${f.user}: resuming from the old epoch is "not recovered", under the new epoch`);
    const frame = f.client.frames.find((x) => x.t === 'joined');
    t.equal(frame?.t === 'joined' ? frame.snap?.round?.data : undefined, 10, `${f.user}: with the snapshot`);
    await f.client.close();
  }
});

t.test('Pub/Sub connections killed while events flow: connected clients still get every seq, healed from history', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.close());
  const instances = await startInstances(2, redisEnv(redis.url, 'pubsub:'));
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const [a, b] = instances;
  const S = 'quiz:pubsub-kill';
  const followers = range(1, 20).map((i) => new Follower(S, `p${i}`));
  await Promise.all(followers.map((f, i) => f.connect(instances[i % 2])));
  const TOTAL = 300;
  let kills = 0;
  const publishing = (async () => {
    for (let n = 1; n <= TOTAL; n++) {
      const r = await a.publish({ session: S, type: 'q', data: n });
      if (r.status !== 200) throw new Error(`publish ${n}: ${r.status}`);
      if (n % 60 === 0) {
        const killed = await redisCommand(redis.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
        if (typeof killed === 'number' && killed > 0) kills++;
      }
      await sleep(3);
    }
  })();
  await publishing;
  t.equal(kills, 5, 'the subscriber connections were killed 5 times mid-stream');
  await Promise.all(followers.map((f) => f.reach(TOTAL, 20_000)));
  await sleep(200);
  for (const f of followers) f.collect();
  t.same(followers.filter((f) => f.seqs.join() !== range(1, TOTAL).join()).map((f) => `${f.user}: ${f.seqs.length}`), [], 'every client got 1..300 once, in order');
  t.ok(followers.every((f) => f.joins.length === 1), 'nobody had to reconnect');
  await Promise.all(followers.map((f) => f.client.close()));
});

t.test('Redis unreachable at start: the daemon waits for it, and gives up with a message naming SHARDCAST_REDIS_URL', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.close());
  await redis.stop();
  // Redis comes up 1.5 s after the daemon: it starts once Redis answers.
  const late = startInstances(1, { ...redisEnv(redis.url, 'late:'), SHARDCAST_SHARDS: '1' });
  await sleep(1500);
  await redis.restart();
  const [d] = await late;
  t.teardown(() => d.stop());
  t.equal(await readyStatus(d), 200, 'ready once Redis answered');
  await d.stop();

  await redis.stop();
  const spawned = spawn(process.execPath, [fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url))], {
    env: { PATH: process.env.PATH, SHARDCAST_PORT: '0', SHARDCAST_DEV_MODE: 'true', SHARDCAST_SHARDS: '1', SHARDCAST_REDIS_URL: `redis://user:hunter2@127.0.0.1:${redis.port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const daemon = new DaemonProcess(spawned);
  const exit = await daemon.exited;
  t.equal(exit.code, 1, 'it exits 1 after the wait');
  const fatal = daemon.lines.find((l) => l.level === 60);
  const message = (fatal?.err as { message?: string } | undefined)?.message ?? '';
  t.match(message, /did not answer within 10000 ms \(SHARDCAST_REDIS_URL\)/, `the error says what to fix: ${message}`);
  t.notMatch(JSON.stringify(daemon.lines), /hunter2/, 'and never logs the password');
});
