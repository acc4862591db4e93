// A rolling update that loses nothing, the way a Kubernetes Deployment does it
// (maxSurge 1, maxUnavailable 0), through bench/rollout/rollout-run.ts: three
// instances on one Redis and one RabbitMQ behind a Service (each new connection to
// the next ready instance, as kube-proxy does), 1,000 SDK clients in two child
// processes, 20 events a second spread over 10 sessions, half of them published
// over HTTP and half to the RabbitMQ events exchange (whose partition consumers
// move between instances as they drain); each instance in turn is replaced: a new
// one started and listening joins the endpoints, the old one leaves them, gets
// SIGTERM and drains (go-aways spread over SHARDCAST_DRAIN_SPREAD_MS). Every client
// must end with every event after its join once, in order, having resumed (never
// rec: false) on another instance; the reconnect-to-resumed times are printed.
import t from 'tap';
import { percentile, runRollout, type RolloutInstance } from '../../bench/rollout/rollout-run.js';
import { startDaemon } from '../support/daemon-process.js';
import { redisEnv } from '../support/instances.js';
import { AMQP_URL, amqpEnv, deleteTopology, uniqueExchange } from '../support/rabbitmq.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { holdServiceLock } from '../support/service-lock.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

// ROLLOUT_CLIENTS runs it with fewer clients (e.g. 100) while working on it.
const CLIENTS = Number(process.env.ROLLOUT_CLIENTS ?? 1000);
// Generous: on a shared, loaded machine daemons take many seconds to boot and the
// run several minutes; nothing here asserts speed.
t.setTimeout(600_000);
const SESSIONS = Array.from({ length: 10 }, (_, i) => `quiz:rollout-${i}`);
const AMQP_PARTITIONS = 2;

t.test(`rolling update of 3 instances under ${CLIENTS} clients: nothing lost, nothing twice`, async (t) => {
  const exchange = uniqueExchange('rollout');
  t.teardown(() => deleteTopology(exchange, AMQP_PARTITIONS));
  const env = {
    ...redisEnv(REDIS_URL, uniquePrefix('rollout')),
    ...amqpEnv(exchange, AMQP_PARTITIONS),
    SHARDCAST_SHARDS: '2',
    SHARDCAST_DRAIN_SPREAD_MS: '3000',
    SHARDCAST_GO_AWAY_MAX_DELAY_MS: '500',
    SHARDCAST_DRAIN_TIMEOUT_MS: '15000',
    SHARDCAST_MAX_CONNECTIONS_PER_USER: '4',
  };
  const startInstance = async (): Promise<RolloutInstance> => {
    const d = await startDaemon(env, { listenTimeoutMs: 180_000 });
    t.teardown(() => d.stop('SIGKILL'));
    return { port: d.port, publish: async (body) => (await d.publish(body)).status, stop: (signal) => d.stop(signal) };
  };
  const r = await runRollout({
    clients: CLIENTS,
    sessions: SESSIONS,
    eventsPerS: 20,
    amqp: { url: AMQP_URL, exchange },
    startInstance,
    log: (line) => t.comment(line),
  });
  t.comment(
    `rollout: ${CLIENTS} clients, ${r.published} events per session, ${r.goaways} go-aways, ${r.resumeMs.length} resumes; ` +
      `lost ${r.lost}, delivered twice ${r.rawDuplicates}, not recovered ${r.notRecovered}; ` +
      `reconnect-to-resumed p50 ${percentile(r.resumeMs, 50)} ms, p99 ${percentile(r.resumeMs, 99)} ms, max ${r.resumeMs.at(-1)} ms; ` +
      `replaced in ${r.rolloutMs} ms; publish retries ${r.publishRetries}`,
  );
  t.equal(r.failedJoins, 0, 'every client joined');
  t.same(r.drainExitCodes, [0, 0, 0], 'each replaced instance drained and exited 0');
  t.equal(r.reports.length, CLIENTS, 'every client reported');
  t.same(
    r.behind.slice(0, 5).map((c) => `${c.user}: ${c.received} events after seq ${c.joinedAt}, last ${c.last}, in order ${c.inOrder}`),
    [],
    `every client got every seq after its join up to ${r.published} once, in order (0 lost)`,
  );
  t.equal(r.rawDuplicates, 0, 'no frame reached any client twice');
  t.equal(r.notRecovered, 0, 'every reconnect resumed from history (rec: true)');
  t.ok(r.moved >= CLIENTS * 0.9, `clients moved to other instances (${r.moved} of ${CLIENTS}; those that landed on a later-replaced instance moved again)`);
});
