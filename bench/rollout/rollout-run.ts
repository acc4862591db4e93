/**
 * A rolling update under load, the way a Kubernetes Deployment does it (maxSurge 1,
 * maxUnavailable 0), measured from the clients' side; run by the e2e test
 * (test/e2e/rolling-update.test.ts, 1,000 clients) and by the bench
 * (bench/rollout/run.ts, 10,000).
 *
 * Three instances behind a Service (each new connection to the next ready instance,
 * as kube-proxy does: rollout-clients.ts), SDK clients in child processes joined to
 * the sessions, one event per session per round at `eventsPerS`
 * in all, each with an id (over HTTP, retried on another instance with the same ids
 * when the one it reached goes away; or to the RabbitMQ events exchange with
 * confirms, for half of the sessions when `amqp` is given). Then each instance in
 * turn is replaced: a new one started and in the Service's endpoints, the old one
 * taken out, SIGTERMed and drained. Every client must end with every event after
 * its join, once, in order, having resumed on another instance.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EventPublisher } from '../../protocol/upstream/amqp-publisher.js';
import { hostBusyUs, sampleProcess } from '../targets/process-stats.js';
import type { ClientReport, ClientsCommand, ClientsMessage } from './rollout-clients.js';

/** One instance of the daemon, as the run drives it. */
export interface RolloutInstance {
  readonly port: number;
  /** Its process, when it runs on this machine: its CPU is counted as the gateway's (Linux /proc). */
  readonly pid?: number;
  /** POSTs a publish body to /v1/publish; resolves with the HTTP status, rejects when the connection fails. */
  publish(body: unknown): Promise<number>;
  /** Signals the instance; resolves with its exit code once it has exited. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<{ code: number | null }>;
}

export interface RolloutOptions {
  clients: number;
  /** Processes holding the clients (default: one per 2,500 clients, at least 2). */
  clientProcesses?: number;
  sessions: string[];
  /** Events per second over all sessions (rounds of one event per session). */
  eventsPerS: number;
  /** When given, half of the sessions' events go to this RabbitMQ events exchange. */
  amqp?: { url: string; exchange: string };
  /** Starts an instance with the run's environment and resolves once it listens. */
  startInstance(): Promise<RolloutInstance>;
  log(line: string): void;
  joinTimeoutMs?: number;
  /** New connections per second while the clients first connect, over all processes (default 2,000). */
  connectsPerS?: number;
}

export interface RolloutResult {
  clients: number;
  reports: ClientReport[];
  /** Rounds published: each session's head seq at the end. */
  published: number;
  publishRetries: number;
  failedJoins: number;
  joinMs: number;
  rolloutMs: number;
  /** Exit codes of the three replaced instances' drains. */
  drainExitCodes: Array<number | null>;
  goaways: number;
  lost: number;
  rawDuplicates: number;
  notRecovered: number;
  /** Clients that resumed at least once. */
  moved: number;
  /** Reconnect → resumed, ms, sorted. */
  resumeMs: number[];
  /** Clients that did not end with every event after their join, once, in order. */
  behind: ClientReport[];
  /** Connections lost before a client's first join (not resumes). */
  dropsBeforeJoin: number;
  /** Attempts that failed while resuming, by close code. */
  failedAttempts: Record<string, number>;
  /**
   * CPU seconds spent from the rollout's start until every client caught up, by
   * whom (Linux /proc; absent elsewhere): the gateway's instances (a replaced one
   * until its SIGTERM), the client processes, and the whole machine.
   */
  cpu?: { windowS: number; gatewayS: number; clientsS: number; machineS: number };
}

/** CPU µs of a process, or undefined when it cannot be read (gone, or not Linux). */
function cpuUsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return sampleProcess(pid).cpuUs;
  } catch {
    return undefined;
  }
}

/** CPU use of a set of processes over a window: add each one's reading at its start and at its end. */
class CpuAccount {
  private us = 0;
  private readonly open = new Map<number, number>();
  begin(pid: number | undefined): void {
    const now = cpuUsOf(pid);
    if (pid !== undefined && now !== undefined) this.open.set(pid, now);
  }
  end(pid: number | undefined): void {
    if (pid === undefined) return;
    const began = this.open.get(pid);
    const now = cpuUsOf(pid);
    if (began !== undefined && now !== undefined) this.us += now - began;
    this.open.delete(pid);
  }
  endAll(): number {
    for (const pid of [...this.open.keys()]) this.end(pid);
    return this.us / 1e6;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Scheduling priority of the client processes (higher is nicer). */
const CLIENT_NICE = 10;

/** The p-th percentile of sorted values (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Waits for the next message of `op` from `child`; fails on its exit or the deadline. */
function expect<T extends { op: string }>(child: ChildProcess, op: T['op'], timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`rollout: no '${op}' from a ${what} process within ${timeoutMs / 1000} s`)), timeoutMs);
    const onMessage = (m: { op: string }) => {
      if (m.op === op) done(null, m as T);
    };
    const onExit = (code: number | null) => done(new Error(`rollout: a ${what} process exited (${code}) before '${op}'`));
    function done(err: Error | null, m?: T): void {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m as T);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Forks a child of this folder from its compiled JS, also when this module runs
 * under a TypeScript loader (the e2e test): a child on the loader takes seconds to
 * start on a loaded machine. `npm run build` first.
 */
function forkChild(name: 'rollout-clients'): ChildProcess {
  const here = new URL(import.meta.url);
  const script = here.pathname.endsWith('.js') ? new URL(`./${name}.js`, here) : new URL(`../../dist/bench/rollout/${name}.js`, here);
  return fork(fileURLToPath(script), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Runs the rollout; stops every instance and child it started before it resolves. */
export async function runRollout(opts: RolloutOptions): Promise<RolloutResult> {
  const { sessions, log } = opts;
  const clientProcesses = opts.clientProcesses ?? Math.max(2, Math.ceil(opts.clients / 2500));
  const viaAmqp = opts.amqp === undefined ? [] : sessions.slice(Math.ceil(sessions.length / 2));
  const viaHttp = sessions.filter((s) => !viaAmqp.includes(s));
  const roundMs = (1000 * sessions.length) / opts.eventsPerS;

  const live: RolloutInstance[] = [];
  const all: RolloutInstance[] = [];
  const children: ChildProcess[] = [];
  let publisher: EventPublisher | undefined;
  try {
    // One at a time: three booting together on a loaded machine can take long.
    for (let i = 0; i < 3; i++) {
      const d = await opts.startInstance();
      live.push(d);
      all.push(d);
    }
    // Publishing.
    let published = 0;
    let publishRetries = 0;
    const publishOverHttp = async (n: number) => {
      if (viaHttp.length === 0) return;
      const body = { events: viaHttp.map((s) => ({ session: s, type: 'tick', data: n, id: `r${n}` })) };
      for (let attempt = 0; ; attempt++) {
        try {
          if ((await live[attempt % live.length].publish(body)) === 200) return;
        } catch {
          // Connection refused or reset: the instance is draining.
        }
        publishRetries += 1;
        if (attempt > 200) throw new Error(`rollout: round ${n} could not be published over HTTP`);
        await sleep(50);
      }
    };
    const publishToExchange = async (n: number) => {
      if (opts.amqp === undefined || viaAmqp.length === 0) return;
      for (let attempt = 0; ; attempt++) {
        try {
          publisher ??= await EventPublisher.connect(opts.amqp.url, opts.amqp.exchange);
          for (const s of viaAmqp) publisher.send({ session: s, type: 'tick', data: n, id: `r${n}` });
          await publisher.confirmed();
          return;
        } catch {
          void publisher?.close();
          publisher = undefined;
        }
        publishRetries += 1;
        if (attempt > 200) throw new Error(`rollout: round ${n} could not be published to RabbitMQ`);
        await sleep(50);
      }
    };
    const publishRound = (n: number) => Promise.all([publishOverHttp(n), publishToExchange(n)]);

    // Clients, joined before anything is published: each expects seq 1 onwards.
    const setEndpoints = (ports: number[]) =>
      Promise.all(
        children.map((c) => {
          const applied = expect<Extract<ClientsMessage, { op: 'endpoints' }>>(c, 'endpoints', 10_000, 'clients');
          c.send({ op: 'endpoints', ports } satisfies ClientsCommand);
          return applied;
        }),
      );
    for (let i = 0; i < clientProcesses; i++) {
      const child = forkChild('rollout-clients');
      // The clients yield the CPU to the gateway (nice 10), as if they ran on other
      // machines: on two cores shared by both, a reconnect wave otherwise measures
      // the load generator's queue for the CPU more than the gateway.
      if (child.pid !== undefined) setPriority(child.pid, CLIENT_NICE);
      children.push(child);
    }
    await setEndpoints(live.map((d) => d.port));
    const joinStarted = Date.now();
    const joined = children.map((c) => expect<Extract<ClientsMessage, { op: 'joined' }>>(c, 'joined', opts.joinTimeoutMs ?? 180_000, 'clients'));
    children.forEach((child, k) => {
      const mine: Array<{ user: string; session: string }> = [];
      for (let i = k; i < opts.clients; i += clientProcesses) {
        mine.push({ user: `u${i}`, session: sessions[i % sessions.length] });
      }
      child.send({ op: 'start', clients: mine, connectsPerS: Math.max(1, Math.floor((opts.connectsPerS ?? 2000) / clientProcesses)) } satisfies ClientsCommand);
    });
    const failedJoins = (await Promise.all(joined)).reduce((n, m) => n + m.failed, 0);
    const joinMs = Date.now() - joinStarted;
    log(`${opts.clients} clients joined in ${joinMs} ms (${failedJoins} failed)`);

    let flowing = true;
    const publishing = (async () => {
      while (flowing) {
        const started = Date.now();
        await publishRound(++published);
        await sleep(Math.max(0, roundMs - (Date.now() - started)));
      }
    })();
    await sleep(1000);

    const rolloutStarted = Date.now();
    const gatewayCpu = new CpuAccount();
    const clientsCpu = new CpuAccount();
    let machineBusy: number | undefined;
    try {
      machineBusy = hostBusyUs();
    } catch {
      machineBusy = undefined;
    }
    for (const d of live) gatewayCpu.begin(d.pid);
    for (const c of children) clientsCpu.begin(c.pid);
    const drainExitCodes: Array<number | null> = [];
    for (let i = 0; i < 3; i++) {
      // maxSurge 1: the new instance is up and in the endpoints first…
      const fresh = await opts.startInstance();
      gatewayCpu.begin(fresh.pid);
      all.push(fresh);
      const old = live.shift() as RolloutInstance;
      live.push(fresh);
      // …then the old one leaves them (preStop), gets SIGTERM and drains.
      await setEndpoints(live.map((d) => d.port));
      await sleep(200);
      gatewayCpu.end(old.pid);
      const { code } = await old.stop('SIGTERM');
      drainExitCodes.push(code);
      log(`instance ${i + 1} of 3 replaced (drain exit code ${code})`);
    }
    const rolloutMs = Date.now() - rolloutStarted;
    await sleep(1000);
    flowing = false;
    await publishing;

    // Everyone catches up with the last round.
    const collect = async () => (await Promise.all(children.map(async (c) => {
      const reply = expect<Extract<ClientsMessage, { op: 'report' }>>(c, 'report', 60_000, 'clients');
      c.send({ op: 'report' } satisfies ClientsCommand);
      return (await reply).clients;
    }))).flat();
    let reports: ClientReport[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      reports = await collect();
      if (reports.every((r) => r.last >= published) || Date.now() > deadline) break;
      await sleep(500);
    }
    const windowS = (Date.now() - rolloutStarted) / 1000;
    const cpu =
      machineBusy === undefined
        ? undefined
        : {
            windowS,
            gatewayS: gatewayCpu.endAll(),
            clientsS: clientsCpu.endAll(),
            machineS: (hostBusyUs() - machineBusy) / 1e6,
          };
    await sleep(500); // a duplicate would arrive now
    reports = await collect();

    const expected = (r: ClientReport) => published - Math.max(0, r.joinedAt);
    const resumeMs = reports.flatMap((r) => r.resumeMs).sort((a, b) => a - b);
    return {
      clients: opts.clients,
      reports,
      published,
      publishRetries,
      failedJoins,
      joinMs,
      rolloutMs,
      drainExitCodes,
      goaways: reports.reduce((n, r) => n + r.goaways, 0),
      lost: reports.reduce((n, r) => n + Math.max(0, expected(r) - r.received), 0),
      rawDuplicates: reports.reduce((n, r) => n + r.rawDuplicates, 0),
      notRecovered: reports.reduce((n, r) => n + r.notRecovered, 0),
      moved: reports.filter((r) => r.resumes > 0).length,
      resumeMs,
      behind: reports.filter((r) => r.last !== published || r.received !== expected(r) || !r.inOrder),
      ...(cpu !== undefined ? { cpu } : {}),
      dropsBeforeJoin: reports.reduce((n, r) => n + r.dropsBeforeJoin, 0),
      failedAttempts: reports.reduce<Record<string, number>>((all, r) => {
        for (const [code, n] of Object.entries(r.failedAttempts)) all[code] = (all[code] ?? 0) + n;
        return all;
      }, {}),
    };
  } finally {
    await publisher?.close();
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.send({ op: 'close' } satisfies ClientsCommand);
      await Promise.race([exited, sleep(10_000)]);
      c.kill('SIGKILL');
    }));
    await Promise.all(all.map((d) => d.stop('SIGKILL').catch(() => undefined)));
  }
}
