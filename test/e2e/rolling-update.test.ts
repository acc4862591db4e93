// A rolling update that loses nothing, the way a Kubernetes Deployment does it
// (maxSurge 1, maxUnavailable 0): three instances on one Redis and one RabbitMQ
// behind a round-robin TCP proxy (the Service), 1,000 SDK clients in two child
// processes, 20 events a second spread over 10 sessions, half of them published
// over HTTP and half to the RabbitMQ events exchange (whose partition consumers
// move between instances as they drain); each instance in turn is replaced:
// a new one started and listening joins the proxy's endpoints, the old one leaves
// them, gets SIGTERM and drains (go-aways spread over SHARDCAST_DRAIN_SPREAD_MS).
// Every client must end with every event once, in order, having resumed (never
// rec: false) on another instance; the reconnect-to-resumed times are printed.
import t from 'tap';
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EventPublisher } from '../../protocol/upstream/amqp-publisher.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { redisEnv } from '../support/instances.js';
import { AMQP_URL, amqpEnv, deleteTopology, uniqueExchange } from '../support/rabbitmq.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { RawClient } from '../support/raw-client.js';
import { holdServiceLock } from '../support/service-lock.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

/** What one client saw over the whole run (test/support/rollout-clients.mjs). */
interface ClientReport {
  user: string;
  session: string;
  /** Events handed to the application. */
  received: number;
  /** Highest seq handed to the application. */
  last: number;
  /** The application saw exactly 1..last, in order. */
  inOrder: boolean;
  /** `ev` frames that reached the socket for a seq it had already received (the SDK would hide them). */
  rawDuplicates: number;
  /** Joins after a reconnect that could not resume (rec: false). */
  notRecovered: number;
  /** Resumed joins after a lost connection. */
  resumes: number;
  /** For each resume: ms from the first reconnect attempt to the resumed `joined`. */
  resumeMs: number[];
  goaways: number;
}

// ROLLOUT_CLIENTS runs it with fewer clients (e.g. 100) while working on it.
const CLIENTS = Number(process.env.ROLLOUT_CLIENTS ?? 1000);
// Generous: on a shared, loaded machine daemons take many seconds to boot and the
// run several minutes; nothing here asserts speed.
t.setTimeout(600_000);
const CHILDREN = 2;
const SESSIONS = Array.from({ length: 10 }, (_, i) => `quiz:rollout-${i}`);
/** Sessions whose events go over HTTP; the others' go through RabbitMQ. */
const HTTP_SESSIONS = SESSIONS.slice(0, 5);
const AMQP_SESSIONS = SESSIONS.slice(5);
const AMQP_PARTITIONS = 2;
/** Events per second in all: rounds of one event per session. */
const EVENTS_PER_S = 20;
const ROUND_MS = (1000 * SESSIONS.length) / EVENTS_PER_S;
const SPREAD_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Service: a TCP proxy spreading new connections round-robin over the ready endpoints. */
class RoundRobinProxy {
  readonly endpoints: number[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  port = 0;

  async listen(): Promise<void> {
    this.server = createServer((downstream) => this.route(downstream, 0));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  private route(downstream: Socket, tries: number): void {
    this.sockets.add(downstream);
    downstream.once('close', () => this.sockets.delete(downstream));
    if (this.endpoints.length === 0 || tries >= this.endpoints.length) {
      downstream.destroy();
      return;
    }
    const port = this.endpoints[this.next++ % this.endpoints.length]!;
    const upstream = connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    downstream.pause();
    upstream.once('error', () => {
      // Refused (an instance that just stopped listening): the next endpoint.
      if (!upstream.readyState.startsWith('open')) this.route(downstream, tries + 1);
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      const end = () => {
        upstream.destroy();
        downstream.destroy();
      };
      upstream.on('error', end);
      downstream.on('error', end);
      downstream.pipe(upstream);
      upstream.pipe(downstream);
      downstream.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One child process of clients. */
class ClientProcess {
  readonly child: ChildProcess;
  private waiters = new Map<string, (msg: any) => void>();

  constructor() {
    this.child = fork(fileURLToPath(new URL('../support/rollout-clients.mjs', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (msg: { op: string }) => this.waiters.get(msg.op)?.(msg));
  }

  request<T>(msg: object, reply: string, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${reply} from the client process in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.set(reply, (m) => {
        clearTimeout(timer);
        this.waiters.delete(reply);
        resolve(m as T);
      });
      this.child.send(msg);
    });
  }

  report(): Promise<ClientReport[]> {
    return this.request<{ clients: ClientReport[] }>({ op: 'report' }, 'report').then((r) => r.clients);
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

t.test(`rolling update of 3 instances under ${CLIENTS} clients: nothing lost, nothing twice`, async (t) => {
  const exchange = uniqueExchange('rollout');
  t.teardown(() => deleteTopology(exchange, AMQP_PARTITIONS));
  const env = {
    ...redisEnv(REDIS_URL, uniquePrefix('rollout')),
    ...amqpEnv(exchange, AMQP_PARTITIONS),
    SHARDCAST_SHARDS: '2',
    SHARDCAST_DRAIN_SPREAD_MS: String(SPREAD_MS),
    SHARDCAST_GO_AWAY_MAX_DELAY_MS: '500',
    SHARDCAST_DRAIN_TIMEOUT_MS: '15000',
    SHARDCAST_MAX_CONNECTIONS_PER_USER: '4',
  };
  // One at a time: three booting together on a loaded machine can take long.
  const live: DaemonProcess[] = [];
  for (let i = 0; i < 3; i++) live.push(await startDaemon(env, { listenTimeoutMs: 180_000 }));
  const all = [...live];
  const proxy = new RoundRobinProxy();
  await proxy.listen();
  for (const d of live) proxy.endpoints.push(d.port);
  const children = Array.from({ length: CHILDREN }, () => new ClientProcess());
  t.teardown(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await proxy.close();
    await Promise.all(all.map((d) => d.stop('SIGKILL')));
  });

  // Publishing: 20 events a second (a round of one per session every 500 ms), each with an id.
  // Over HTTP a round is retried with the same ids on another instance when the one it
  // reached goes away; to RabbitMQ it is sent with confirms (and again, same ids, if
  // the broker did not confirm), whichever instance consumes it.
  let published = 0;
  let retries = 0;
  let publisher: EventPublisher | undefined;
  t.teardown(() => publisher?.close());
  const publishToExchange = async (n: number) => {
    for (let attempt = 0; ; attempt++) {
      try {
        publisher ??= await EventPublisher.connect(AMQP_URL, exchange);
        for (const s of AMQP_SESSIONS) publisher.send({ session: s, type: 'tick', data: n, id: `r${n}` });
        await publisher.confirmed();
        return;
      } catch {
        void publisher?.close();
        publisher = undefined;
      }
      retries += 1;
      if (attempt > 200) throw new Error(`round ${n} could not be published to RabbitMQ`);
      await sleep(50);
    }
  };
  const publishOverHttp = async (n: number) => {
    const body = { events: HTTP_SESSIONS.map((s) => ({ session: s, type: 'tick', data: n, id: `r${n}` })) };
    for (let attempt = 0; ; attempt++) {
      const target = live[attempt % live.length]!;
      try {
        const r = await target.publish(body);
        if (r.status === 200) return;
      } catch {
        // Connection refused or reset: the instance is draining.
      }
      retries += 1;
      if (attempt > 200) throw new Error(`round ${n} could not be published`);
      await sleep(50);
    }
  };
  const publishRound = (n: number) => Promise.all([publishOverHttp(n), publishToExchange(n)]);
  await publishRound(++published);
  const sessions: Array<{ s: string; ep: string }> = [];
  for (const s of SESSIONS) {
    // The first round reaches the RabbitMQ sessions once a consumer took it in.
    for (let i = 0; ; i++) {
      const probe = await RawClient.connect(live[0]!.ws, { user: 'probe' });
      const joined = await probe.join(s);
      await probe.close();
      if (joined.t !== 'joined') throw new Error(`probe: ${JSON.stringify(joined)}`);
      if (joined.seq >= 1) {
        sessions.push({ s, ep: joined.ep });
        break;
      }
      if (i >= 100) throw new Error(`${s}: the first round never arrived`);
      await sleep(100);
    }
  }

  const url = `ws://127.0.0.1:${proxy.port}/v1/ws`;
  const per = Math.ceil(CLIENTS / CHILDREN);
  const connectStarted = Date.now();
  await Promise.all(
    children.map((c, k) =>
      c.request({ op: 'start', url, sessions, users: Array.from({ length: Math.min(per, CLIENTS - k * per) }, (_, i) => `u${k * per + i}`) }, 'joined', 120_000),
    ),
  );
  t.comment(`${CLIENTS} clients joined through the proxy in ${Date.now() - connectStarted} ms`);

  let flowing = true;
  const publishing = (async () => {
    while (flowing) {
      const started = Date.now();
      await publishRound(++published);
      await sleep(Math.max(0, ROUND_MS - (Date.now() - started)));
    }
  })();
  await sleep(1000);

  const rolloutStarted = Date.now();
  for (let i = 0; i < 3; i++) {
    // maxSurge 1: the new instance is up and in the endpoints first…
    const fresh = await startDaemon(env, { listenTimeoutMs: 180_000 });
    all.push(fresh);
    proxy.endpoints.push(fresh.port);
    // …then the old one leaves them (preStop), gets SIGTERM and drains.
    const old = live.shift()!;
    live.push(fresh);
    proxy.endpoints.splice(proxy.endpoints.indexOf(old.port), 1);
    await sleep(200);
    const { code } = await old.stop('SIGTERM');
    t.equal(code, 0, `instance ${i + 1} drained and exited 0`);
  }
  t.comment(`three instances replaced in ${Date.now() - rolloutStarted} ms`);
  await sleep(1000);
  flowing = false;
  await publishing;

  // Everyone catches up with the last round.
  let reports: ClientReport[] = [];
  const deadline = Date.now() + 30_000;
  for (;;) {
    reports = (await Promise.all(children.map((c) => c.report()))).flat();
    if (reports.every((r) => r.last >= published) || Date.now() > deadline) break;
    await sleep(500);
  }
  await sleep(500); // a duplicate would arrive now
  reports = (await Promise.all(children.map((c) => c.report()))).flat();

  const behind = reports.filter((r) => r.last !== published || r.received !== published || !r.inOrder);
  const doubled = reports.filter((r) => r.rawDuplicates > 0);
  const notRecovered = reports.reduce((n, r) => n + r.notRecovered, 0);
  const moved = reports.filter((r) => r.resumes > 0).length;
  const resumeMs = reports.flatMap((r) => r.resumeMs).sort((a, b) => a - b);
  const lost = reports.reduce((n, r) => n + Math.max(0, published - r.received), 0);
  t.comment(
    `rollout: ${CLIENTS} clients, ${published} events per session, ${reports.reduce((n, r) => n + r.goaways, 0)} go-aways, ${resumeMs.length} resumes; ` +
      `lost ${lost}, delivered twice ${reports.reduce((n, r) => n + r.rawDuplicates, 0)}, not recovered ${notRecovered}; ` +
      `reconnect-to-resumed p50 ${percentile(resumeMs, 50)} ms, p99 ${percentile(resumeMs, 99)} ms, max ${resumeMs.at(-1)} ms; publish retries ${retries}`,
  );
  t.equal(reports.length, CLIENTS, 'every client reported');
  t.same(behind.slice(0, 5).map((r) => `${r.user}: ${r.received} events, last ${r.last}, in order ${r.inOrder}`), [], `every client got seqs 1..${published} once, in order (0 lost)`);
  t.same(doubled.slice(0, 5).map((r) => `${r.user}: ${r.rawDuplicates} frames twice`), [], 'no frame reached any client twice');
  t.equal(notRecovered, 0, 'every reconnect resumed from history (rec: true)');
  t.ok(moved >= CLIENTS * 0.9, `clients moved to other instances (${moved} of ${CLIENTS}; those that landed on a later-replaced instance moved again)`);

  await Promise.all(children.map((c) => c.request({ op: 'close' }, 'never', 10_000).catch(() => undefined)));
});
