// The durable command path end to end: commands journaled in Postgres (acked once
// stored, unique on session/user/cid across instances), relayed to RabbitMQ by one
// instance at a time (the relay lease's holder, replaced when it dies), and
// Postgres stopped for 10 s: never an ack for an unstored command, retries succeed
// once it is back, nothing twice upstream.
import t, { type Test } from 'tap';
import type { DaemonProcess } from '../support/daemon-process.js';
import { sendUntilAcked, upstream } from '../support/commands.js';
import { range, redisEnv, startInstances } from '../support/instances.js';
import { createTestSchema, DATABASE_URL } from '../support/postgres.js';
import { startPostgresServer } from '../support/postgres-server.js';
import { amqpEnv, deleteTopology, uniqueExchange } from '../support/rabbitmq.js';
import { RawClient } from '../support/raw-client.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { holdServiceLock } from '../support/service-lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

/** Environment for instances on Redis, RabbitMQ (fresh exchanges) and the given database schema. */
async function env(t: Test, name: string, databaseUrl: string, schema: string) {
  const events = uniqueExchange(name);
  const commands = uniqueExchange(`${name}-cmds`);
  t.teardown(() => deleteTopology(events, 2));
  const up = await upstream(t, commands);
  return {
    up,
    env: {
      ...redisEnv(REDIS_URL, uniquePrefix(name)),
      ...amqpEnv(events, 2),
      SHARDCAST_AMQP_COMMANDS_EXCHANGE: commands,
      SHARDCAST_DATABASE_URL: databaseUrl,
      SHARDCAST_DATABASE_SCHEMA: schema,
      SHARDCAST_RATE_LIMIT_PER_S: '1000',
      SHARDCAST_RATE_LIMIT_BURST: '1000',
      SHARDCAST_USER_RATE_LIMIT_PER_S: '1000',
    },
  };
}

async function waitUpstream(up: Awaited<ReturnType<typeof upstream>>, n: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (up.got.length < n && Date.now() < deadline) {
    await up.take();
    await sleep(100);
  }
  await sleep(500);
  await up.take();
}

t.test('two instances on one journal: each command stored once whichever instance gets it, relayed once by the lease holder, who is replaced when killed', async (t) => {
  const { schema, drop } = await createTestSchema();
  t.teardown(drop);
  const { up, env: e } = await env(t, 'pgcmds', DATABASE_URL, schema);
  const instances: DaemonProcess[] = await startInstances(2, e);
  t.teardown(() => Promise.all(instances.map((d) => d.stop())));
  const [a, b] = instances;
  const S = 'quiz:pg';
  const clients = await Promise.all(range(0, 9).map((i) => RawClient.connect((i % 2 ? a : b).ws, { user: `p${i}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) await c.join(S);
  await Promise.all(clients.map((c, i) => sendUntilAcked(c, S, `c${i}`, { i })));
  // The same user retries a cid through the other instance: Postgres knows it.
  const again = await RawClient.connect((0 % 2 ? b : a).ws, { user: 'p0' });
  t.teardown(() => again.close());
  await again.join(S);
  t.same(await sendUntilAcked(again, S, 'c0', { i: 'again' }), { dup: true, tries: 1 }, 'a cid retried on another instance is a duplicate');
  await waitUpstream(up, 10);
  t.equal(up.got.length, 10, 'ten commands upstream: relayed by one instance, the retry not at all');
  const leaders = instances.filter((d) => d.lines.some((l) => l.msg === 'relaying commands: this instance holds the relay lease'));
  t.equal(leaders.length, 1, 'one instance holds the relay lease');

  // The leader dies; the other takes the lock over and relays what comes next.
  const leader = leaders[0];
  const other = leader === a ? b : a;
  leader.proc.kill('SIGKILL');
  await leader.exited;
  const survivor = await RawClient.connect(other.ws, { user: 'late' });
  t.teardown(() => survivor.close());
  await survivor.join(S);
  for (let n = 0; n < 5; n++) await sendUntilAcked(survivor, S, `late${n}`, { n });
  await other.waitForLine((l) => l.msg === 'relaying commands: this instance holds the relay lease', 20_000);
  await waitUpstream(up, 15);
  const ids = up.got.map((m) => m.messageId);
  t.equal(new Set(ids).size, 15, 'the commands recorded after the kill were relayed by the new lease holder');
  t.ok(ids.length >= 15, `each at least once (${ids.length}; a batch in flight at the kill may come twice: upstreams dedupe on message_id)`);
});

t.test('Postgres stopped for 10 s: commands get retryable errors, never an ack; retries succeed once it is back; nothing twice upstream', async (t) => {
  const pg = await startPostgresServer();
  t.teardown(() => pg.close());
  const { up, env: e } = await env(t, 'pgdown', pg.url, 'shardcast');
  const [d] = await startInstances(1, e);
  t.teardown(() => d.stop());
  const S = 'quiz:pgdown';
  const clients = await Promise.all(range(0, 9).map((i) => RawClient.connect(d.ws, { user: `u${i}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) await c.join(S);
  for (const [i, c] of clients.entries()) await sendUntilAcked(c, S, `before${i}`, {});
  await pg.stop();
  const down = Date.now();
  const restarted = sleep(10_000).then(() => pg.start());
  t.teardown(() => restarted.catch(() => {}));
  let retried = 0;
  await Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; n < 10; n++) {
        const r = await sendUntilAcked(c, S, `during${i}-${n}`, { n }).catch((err: unknown) => {
          // Diagnostics when a cmd goes unanswered: what the daemon said, and the client's state.
          t.comment(`client ${i} (${c.shard()}), cmd ${n}, ${Date.now() - down} ms after the stop: ${String(err)}`);
          t.comment(`socket readyState ${c.ws.readyState}; last frames ${JSON.stringify(c.frames.slice(-4)).slice(0, 600)}`);
          for (const l of d.lines.filter((x) => (x.level ?? 0) >= 40)) t.comment(`daemon: ${JSON.stringify(l).slice(0, 500)}`);
          throw err;
        });
        if (r.tries > 1) retried++;
        // Nothing may be acked while Postgres cannot store it.
        if (Date.now() - down < 9_500 && r.tries === 1 && n === 0) t.fail(`${c.shard()}: acked while Postgres was down`);
      }
    }),
  );
  await restarted;
  t.ok(retried >= 10, `${retried} commands were refused with a retryable error and retried`);
  await waitUpstream(up, 110, 40_000);
  const ids = up.got.map((m) => m.messageId);
  t.equal(new Set(ids).size, 110, 'all 110 commands reached upstream');
  t.equal(ids.length, 110, 'each once');
  t.same(d.lines.filter((l) => (l.level ?? 0) >= 60).map((l) => `${l.msg}: ${JSON.stringify(l.err)}`), [], 'the daemon never crashed');
});
