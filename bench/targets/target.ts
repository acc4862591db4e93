/**
 * The servers the bench compares, each started as its own child process on a
 * loopback port (one at a time, never concurrently), so the bench can read that
 * process's CPU time and memory from /proc without counting its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtocolName } from '../load/client-protocol.js';
import { BENCH_API_KEY, PUSHER_APP, pusherPublisher, shardcastPublisher, type Publisher } from '../load/publisher.js';
import { amqpPublisher } from '../load/amqp-publisher.js';
import { benchAmqp, BENCH_AMQP_PARTITIONS } from './amqp-target.js';
import { benchRedis } from './redis-target.js';
import { ensureSoketi, soketiServerScript } from './soketi-install.js';
import { allocatorEnv } from '../../daemon/allocator.js';

/** Every target name the CLI accepts. */
export const TARGET_NAMES = [
  'shardcast',
  'shardcast-1',
  'uws-raw',
  'socketio',
  'soketi',
  'ws-hub',
  'shardcast-redis1',
  'shardcast-redis2',
  'shardcast-redis3',
  'shardcast-amqp',
] as const;

/** A target name. */
export type TargetName = (typeof TARGET_NAMES)[number];

/** The targets run when `--targets` is not given: the ones that need nothing but this machine (no Redis). */
export const DEFAULT_TARGETS: readonly TargetName[] = ['shardcast', 'shardcast-1', 'uws-raw', 'socketio', 'soketi', 'ws-hub'];

/** Where clients connect. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** A started target. */
export interface RunningTarget {
  readonly name: string;
  /** The (first) address clients connect to; the publisher's too. */
  readonly host: string;
  readonly port: number;
  readonly protocol: ProtocolName;
  /** The (first) server process, for /proc readings. */
  readonly pid: number;
  readonly publisher: Publisher;
  /**
   * A target of several instances: every address clients connect to, spread by
   * the load generator (see LoadPlan.endpoints). Absent: `[{host, port}]`.
   */
  readonly endpoints?: readonly Endpoint[];
  /** Every server process of the target, readings summed. Absent: `[pid]`. */
  readonly pids?: readonly number[];
  /**
   * A server the target runs on and shares with others (Redis): its CPU over the
   * measured phase counts into the target's server CPU and is reported apart as
   * `<name>_cpu_us_per_frame`, its RSS as `<name>_rss_mb`.
   */
  readonly backing?: BackingServer;
  /** The last few KB the process wrote to stdout and stderr. */
  output(): string;
  /** Ends the process (SIGTERM, then SIGKILL after a grace) and waits for it. */
  stop(): Promise<void>;
}

/** A server a target runs on (see RunningTarget.backing). */
export interface BackingServer {
  /** Column prefix: `redis`. */
  readonly name: string;
  /** Its process on this machine, for /proc readings. */
  readonly pid: number;
  /** Commands it processed since it started (all clients', not only this target's); absent when it cannot say (RabbitMQ). */
  commandsProcessed?(): Promise<number>;
}

/** The addresses clients connect to. */
export function targetEndpoints(target: RunningTarget): readonly Endpoint[] {
  return target.endpoints && target.endpoints.length > 0 ? target.endpoints : [{ host: target.host, port: target.port }];
}

/** The target's server processes. */
export function targetPids(target: RunningTarget): readonly number[] {
  return target.pids && target.pids.length > 0 ? target.pids : [target.pid];
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 60_000;

/** The repository root: the nearest ancestor holding the shardcast package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'shardcast') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench: cannot find the shardcast repository root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** True when `name` is a known target. */
export function isTargetName(name: string): name is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(name);
}

/** How to start a target. */
export interface TargetOptions {
  /**
   * Shardcast only: turn pjoin/pleave notices on for the bench's sessions (namespace
   * `bench-` with presence and joinLeave). Off by default, as in the daemon's own
   * defaults: a notice per join to every member makes filling a session quadratic.
   */
  joinLeave?: boolean;
}

/** Starts a target and resolves once it accepts connections. */
export async function startTarget(name: TargetName, options: TargetOptions = {}): Promise<RunningTarget> {
  const root = repoRoot();
  const port = await freePort();
  const node = process.execPath;
  switch (name) {
    case 'shardcast':
    case 'shardcast-1': {
      const script = join(root, 'dist/daemon/main.js');
      const shards = name === 'shardcast' ? availableParallelism() : 1;
      const child = spawnServer(node, [script], shardcastEnv(port, shards, options));
      const ready = await waitReady(name, child, port, 'listening-line');
      return running(name, child, ready, 'shardcast', shardcastPublisher({ host: HOST, port: ready }));
    }
    case 'shardcast-redis1':
    case 'shardcast-redis2':
    case 'shardcast-redis3':
      return startRedisShardcast(name, root, options);
    case 'shardcast-amqp':
      return startAmqpShardcast(root, port, options);
    case 'uws-raw':
    case 'socketio':
    case 'ws-hub': {
      const script = join(root, `dist/bench/targets/servers/${name}.js`);
      const child = spawnServer(node, [script], { BENCH_PORT: String(port) });
      const ready = await waitReady(name, child, port, 'listening-line');
      const protocol: ProtocolName = name === 'socketio' ? 'socketio' : 'shardcast';
      return running(name, child, ready, protocol, shardcastPublisher({ host: HOST, port: ready }));
    }
    case 'soketi': {
      await ensureSoketi(root);
      const metricsPort = await freePort();
      const child = spawnServer(node, [soketiServerScript(root), 'start'], {
        SOKETI_HOST: HOST,
        SOKETI_PORT: String(port),
        SOKETI_METRICS_SERVER_PORT: String(metricsPort),
        SOKETI_DEFAULT_APP_ID: PUSHER_APP.id,
        SOKETI_DEFAULT_APP_KEY: PUSHER_APP.key,
        SOKETI_DEFAULT_APP_SECRET: PUSHER_APP.secret,
        SOKETI_EVENT_MAX_CHANNELS_AT_ONCE: '100',
        SOKETI_SHUTDOWN_GRACE_PERIOD: '500',
        SOKETI_DEBUG: '0',
      });
      const ready = await waitReady(name, child, port, 'http-probe');
      return running(name, child, ready, 'pusher', pusherPublisher({ host: HOST, port: ready }));
    }
    default:
      throw new Error(`bench: unknown target ${String(name satisfies never)}`);
  }
}

/** Environment of a Shardcast daemon the bench starts (the daemon's defaults otherwise). */
function shardcastEnv(port: number, shards: number, options: TargetOptions): Record<string, string> {
  return {
    // As npm start and the image start it; MALLOC_* given to the bench win.
    ...allocatorEnv(),
    SHARDCAST_DEV_MODE: 'true',
    SHARDCAST_HOST: HOST,
    SHARDCAST_PORT: String(port),
    // Any free admin port: several instances of a target (shardcast-redis3) would
    // otherwise all ask for 9090, and a developer's own daemon may hold it.
    SHARDCAST_ADMIN_PORT: '0',
    SHARDCAST_SHARDS: String(shards),
    // info: the "listening" line (all shards up) is logged at info; nothing per connection is.
    SHARDCAST_LOG_LEVEL: 'info',
    SHARDCAST_API_KEY: BENCH_API_KEY,
    // Otherwise the daemon's defaults; see TargetOptions.joinLeave.
    ...(options.joinLeave ? { SHARDCAST_NAMESPACES: JSON.stringify([{ prefix: 'bench-', presence: true, joinLeave: true }]) } : {}),
  };
}

/**
 * Shardcast on Redis: `shardcast-redis1` is one instance with one shard per core
 * (as `shardcast`); `shardcast-redis2` and `shardcast-redis3` are two and three
 * instances of one shard each (two instances of one shard have the shard threads
 * of `shardcast` on a 2-core machine; three are already more threads than cores,
 * and more shards would only add contention). All on the Redis of
 * BENCH_REDIS_URL (default redis://127.0.0.1:6379) under a key prefix unique to this
 * run, deleted when the target stops. The publisher posts to the first instance.
 */
async function startRedisShardcast(
  name: 'shardcast-redis1' | 'shardcast-redis2' | 'shardcast-redis3',
  root: string,
  options: TargetOptions,
): Promise<RunningTarget> {
  const redis = await benchRedis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const instances = Number(name.slice(-1));
  const shards = instances === 1 ? availableParallelism() : 1;
  const script = join(root, 'dist/daemon/main.js');
  const children: ServerProcess[] = [];
  let publisher: Publisher | undefined;
  const stopAll = async (): Promise<void> => {
    publisher?.close();
    await Promise.all(children.map((child) => stopProcess(child)));
    await redis.cleanUp();
  };
  try {
    const ports = await Promise.all(
      Array.from({ length: instances }, async () => {
        const port = await freePort();
        const child = spawnServer(process.execPath, [script], {
          ...shardcastEnv(port, shards, options),
          SHARDCAST_REDIS_URL: redis.url,
          SHARDCAST_REDIS_PREFIX: redis.prefix,
        });
        children.push(child);
        return { child, port };
      }),
    );
    const endpoints: Endpoint[] = [];
    for (const [k, { child, port }] of ports.entries()) {
      endpoints.push({ host: HOST, port: await waitReady(`${name} instance ${k + 1}`, child, port, 'listening-line') });
    }
    publisher = shardcastPublisher(endpoints[0]);
    const pids = ports.map(({ child }) => child.pid ?? 0);
    return {
      name,
      host: HOST,
      port: endpoints[0].port,
      protocol: 'shardcast',
      pid: pids[0],
      publisher,
      endpoints,
      pids,
      ...(redis.backing ? { backing: redis.backing } : {}),
      output: () => ports.map(({ child }, k) => (instances > 1 ? `[instance ${k + 1}]\n${child.outputTail}` : child.outputTail)).join('\n'),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Shardcast with RabbitMQ ingress: `shardcast` (standalone memory engine, one shard
 * per core) plus SHARDCAST_AMQP_URL = BENCH_AMQP_URL (default
 * amqp://guest:guest@127.0.0.1:5672) on an events exchange unique to the run; the
 * publisher sends every event as a message to that exchange (confirmed per batch)
 * instead of POSTing it. Ready once the daemon listens and `/readyz` answers 200
 * (every partition has its consumer). On stop: the publisher's connection closes,
 * the daemon exits, then the run's queues and exchanges are deleted.
 */
async function startAmqpShardcast(root: string, port: number, options: TargetOptions): Promise<RunningTarget> {
  const name = 'shardcast-amqp';
  const amqp = await benchAmqp(process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  let child: ServerProcess | undefined;
  let publisher: Awaited<ReturnType<typeof amqpPublisher>> | undefined;
  const stopAll = async (): Promise<void> => {
    await publisher?.closed();
    if (child) await stopProcess(child);
    await amqp.cleanUp();
  };
  try {
    child = spawnServer(process.execPath, [join(root, 'dist/daemon/main.js')], {
      ...shardcastEnv(port, availableParallelism(), options),
      SHARDCAST_AMQP_URL: amqp.url,
      SHARDCAST_AMQP_EXCHANGE: amqp.exchange,
      SHARDCAST_AMQP_PARTITIONS: String(BENCH_AMQP_PARTITIONS),
    });
    const ready = await waitReady(name, child, port, 'listening-line');
    await waitReadyz(name, child, ready);
    publisher = await amqpPublisher(amqp.url, amqp.exchange);
    const started = child;
    return {
      name,
      host: HOST,
      port: ready,
      protocol: 'shardcast',
      pid: started.pid ?? 0,
      publisher,
      ...(amqp.backing ? { backing: amqp.backing } : {}),
      output: () => started.outputTail,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Waits until `GET /readyz` answers 200. */
async function waitReadyz(name: string, child: ServerProcess, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`bench: target ${name} exited (${child.exitCode ?? child.signalCode}) before ready:\n${child.outputTail}`);
    }
    if (await httpAnswers(port, '/readyz')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bench: target ${name}: /readyz not 200 within ${START_TIMEOUT_MS / 1000} s:\n${child.outputTail}`);
}

function running(name: TargetName, child: ServerProcess, port: number, protocol: ProtocolName, publisher: Publisher): RunningTarget {
  return {
    name,
    host: HOST,
    port,
    protocol,
    pid: child.pid ?? 0,
    publisher,
    output: () => child.outputTail,
    stop: async () => {
      publisher.close();
      await stopProcess(child);
    },
  };
}

/** Child output is kept (bounded) for error messages; the rest is drained. */
interface ServerProcess extends ChildProcess {
  outputTail: string;
}

/**
 * Node flags for the servers a bench starts only (BENCH_SERVER_NODE_ARGS, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`), which NODE_OPTIONS refuses and would also
 * apply to the bench's own process.
 */
export function serverNodeArgs(): string[] {
  return (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

function spawnServer(command: string, args: string[], env: Record<string, string>): ServerProcess {
  const nodeArgs = command === process.execPath ? serverNodeArgs() : [];
  const child = spawn(command, [...nodeArgs, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ServerProcess;
  child.outputTail = '';
  const keep = (chunk: Buffer): void => {
    child.outputTail = (child.outputTail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

async function waitReady(name: string, child: ServerProcess, port: number, how: 'listening-line' | 'http-probe'): Promise<number> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`bench: target ${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${child.outputTail}`);
    }
    if (how === 'listening-line') {
      for (const line of child.outputTail.split('\n')) {
        if (!line.includes('"listening"')) continue;
        try {
          const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
          if (parsed.msg === 'listening') return typeof parsed.port === 'number' && parsed.port > 0 ? parsed.port : port;
        } catch {
          // A partial line: read it again on the next turn.
        }
      }
    } else if (await httpAnswers(port)) {
      return port;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopProcess(child);
  throw new Error(`bench: target ${name} did not listen within ${START_TIMEOUT_MS / 1000} s:\n${child.outputTail}`);
}

async function httpAnswers(port: number, path = '/'): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
