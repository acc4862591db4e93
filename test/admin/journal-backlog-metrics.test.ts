/**
 * /metrics reports the command journal's backlog: commands journaled in Postgres
 * but not yet relayed to RabbitMQ. The relay is held back for real: the commands
 * exchange exists with another type, so the relay's channel fails to declare it
 * (406) and every delivery waits; commands are still journaled and acked. Once the
 * exchange is put right the relay catches up and the backlog drains to 0. Also: a
 * journal that does not answer leaves its gauges out of a scrape, quickly.
 */
import t from 'tap';
import { connect } from 'amqplib';
import { startDaemon } from '../support/daemon-process.js';
import { adminFetch, eventually } from '../support/admin-cli-process.js';
import { sendUntilAcked, upstream } from '../support/commands.js';
import { parsePrometheusText, type Sample } from '../support/prometheus-text.js';
import { createTestSchema, DATABASE_URL } from '../support/postgres.js';
import { AMQP_URL, amqpEnv, deleteTopology, uniqueExchange } from '../support/rabbitmq.js';
import { RawClient } from '../support/raw-client.js';
import { holdServiceLock } from '../support/service-lock.js';
import { JournalHeadProbe } from '../../daemon/admin/journal-head.js';

const TOKEN = 'journal-backlog-token-0123456789';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

/** The value of a sample without labels, or undefined when the scrape has none. */
const gauge = (samples: Sample[], name: string) => samples.find((s) => s.name === name)?.value;

t.test('commands journaled while the relay cannot deliver are the backlog; it drains to 0 once the relay catches up', async (t) => {
  const { schema, drop } = await createTestSchema();
  t.teardown(drop);
  const events = uniqueExchange('backlog');
  const commands = uniqueExchange('backlog-cmds');
  t.teardown(() => deleteTopology(events, 2));
  // The relay declares the commands exchange as a topic exchange: a fanout one of the same name makes that fail.
  const amqp = await connect(AMQP_URL);
  t.teardown(() => amqp.close().catch(() => {}));
  const ch = await amqp.createChannel();
  await ch.assertExchange(commands, 'fanout', { durable: true });

  const daemon = await startDaemon({
    ...amqpEnv(events, 2),
    SHARDCAST_AMQP_COMMANDS_EXCHANGE: commands,
    SHARDCAST_DATABASE_URL: DATABASE_URL,
    SHARDCAST_DATABASE_SCHEMA: schema,
    SHARDCAST_ADMIN_TOKEN: TOKEN,
    SHARDCAST_SHARDS: '1',
    SHARDCAST_RATE_LIMIT_PER_S: '1000',
    SHARDCAST_RATE_LIMIT_BURST: '1000',
    SHARDCAST_USER_RATE_LIMIT_PER_S: '1000',
  });
  t.teardown(() => daemon.stop());
  await daemon.waitForLine((l) => l.msg === 'relaying commands: this instance holds the relay lease', 15_000);
  const scrape = async () => parsePrometheusText((await adminFetch(daemon, TOKEN, '/metrics')).text).samples;
  const before = await scrape();
  t.equal(gauge(before, 'shardcast_command_journal_head_position'), 0, 'an empty journal: head 0');
  t.equal(gauge(before, 'shardcast_command_journal_backlog'), 0, 'nothing to relay');

  const N = 7;
  const client = await RawClient.connect(daemon.ws, { user: 'player' });
  t.teardown(() => client.close());
  await client.join('quiz:backlog');
  for (let i = 1; i <= N; i++) t.same(await sendUntilAcked(client, 'quiz:backlog', `c${i}`, { i }), { dup: false, tries: 1 }, `command ${i} journaled and acked`);
  // A retry of a journaled command stores nothing: the backlog does not grow.
  t.same(await sendUntilAcked(client, 'quiz:backlog', 'c3', { i: 3 }), { dup: true, tries: 1 });

  // The relay keeps failing meanwhile: nothing leaves the journal however long we wait.
  await new Promise((r) => setTimeout(r, 1500));
  const behind = await scrape();
  t.equal(gauge(behind, 'shardcast_command_journal_head_position'), N, `the journal's head is the ${N}th command`);
  t.equal(gauge(behind, 'shardcast_command_relay_position'), 0, 'the relay delivered nothing');
  t.equal(gauge(behind, 'shardcast_command_journal_backlog'), N, `${N} commands wait to be relayed`);

  // Put the exchange right: the relay's next attempt declares it and delivers.
  await ch.deleteExchange(commands);
  const up = await upstream(t, commands);
  const caughtUp = await eventually('the backlog drained', async () => {
    const s = await scrape();
    return gauge(s, 'shardcast_command_journal_backlog') === 0 ? s : undefined;
  }, 60_000);
  t.equal(gauge(caughtUp, 'shardcast_command_relay_position'), N, 'the relay delivered up to the head');
  t.equal(gauge(caughtUp, 'shardcast_command_journal_head_position'), N, 'the head did not move');
  await eventually('upstream got them', async () => {
    await up.take();
    return up.got.length >= N ? true : undefined;
  });
  t.equal(up.got.length, N, 'each command upstream once');
});

t.test('a journal that does not answer leaves a scrape after the timeout, without a head; one read stays in flight', async (t) => {
  // The probe's timer is unref'd (it must not hold a stopping daemon up): keep this test's process alive.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  let reads = 0;
  let answer: (head: number) => void = () => {};
  const journal = {
    head: () => {
      reads++;
      return new Promise<number>((resolve) => (answer = resolve));
    },
  };
  const warnings: unknown[] = [];
  const probe = new JournalHeadProbe(journal, 100, { warn: (obj: unknown) => void warnings.push(obj) });
  const started = Date.now();
  t.equal(await probe.read(), undefined, 'no head when the journal is silent');
  t.ok(Date.now() - started < 1000, 'the scrape waited about the timeout, not for the journal');
  t.equal(await probe.read(), undefined);
  t.equal(reads, 1, 'a second scrape shares the read still in flight instead of starting another');
  answer(42);
  await new Promise((r) => setImmediate(r));
  t.equal(await probe.read(), undefined, 'the next scrape starts a new read (this one silent too)');
  t.equal(reads, 2);
  answer(42);
  const failing = new JournalHeadProbe({ head: () => Promise.reject(new Error('connection refused')) }, 100, { warn: (obj: unknown) => void warnings.push(obj) });
  t.equal(await failing.read(), undefined, 'a failing journal: no head, no throw');
  t.equal(await failing.read(), undefined);
  t.equal(warnings.length, 1, 'the failure is logged once while it lasts');
  t.equal(await new JournalHeadProbe({ head: async () => 9 }, 100).read(), 9, 'a journal that answers in time gives its head');
});
