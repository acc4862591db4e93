/**
 * The rollout bench: `node dist/bench/rollout/run.js [--clients N] [--shards K]
 * [--no-amqp] [--json]` (after `npm run build`). Runs rollout-run.ts with N SDK
 * clients (10,000 by default) against three built daemons on the machine's Redis
 * (BENCH_REDIS_URL, default redis://127.0.0.1:6379) and, unless --no-amqp, RabbitMQ
 * (BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672), each replaced in turn
 * while 20 events/s flow into 10 sessions, and prints what the clients saw: lost,
 * delivered twice, not recovered, reconnect → resumed percentiles, with the machine
 * and the method. Keys and queues of the run are deleted at the end. Exit 1 when an
 * event was lost or delivered twice or a resume failed, 2 on a bad command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchAmqp, BENCH_AMQP_PARTITIONS, type BenchAmqp } from '../targets/amqp-target.js';
import { benchRedis, type BenchRedis } from '../targets/redis-target.js';
import { percentile, runRollout, type RolloutInstance } from './rollout-run.js';
import { withAllocatorEnv } from '../../daemon/allocator.js';

const SESSIONS = Array.from({ length: 10 }, (_, i) => `quiz:rollout-${i}`);
const EVENTS_PER_S = 20;
const SPREAD_MS = 5000;
const MAIN = fileURLToPath(new URL('../../daemon/main.js', import.meta.url));

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isSafeInteger(value) || value < 1) {
    process.stderr.write(`rollout: --${name} needs a positive integer, got ${args[at + 1]}\n`);
    process.exit(2);
  }
  return value;
}

/** Starts the built daemon with `env` and resolves once it logs that it listens. */
async function startInstance(env: Record<string, string>): Promise<RolloutInstance> {
  const child: ChildProcess = spawn(process.execPath, [MAIN], { env: withAllocatorEnv({ PATH: process.env.PATH, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (tail = (tail + chunk).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`rollout: a daemon did not listen within 120 s:\n${out.slice(-2000)}${tail}`)), 120_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out = (out + chunk).slice(-8000);
      const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`rollout: a daemon exited (${code}) before listening:\n${out.slice(-2000)}${tail}`));
    });
  });
  return {
    port,
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    publish: async (body) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      return res.status;
    },
    stop: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return { code: await exited };
    },
  };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const clients = option(args, 'clients', 10_000);
  const shards = option(args, 'shards', 2);
  const useAmqp = !args.includes('--no-amqp');
  const redis: BenchRedis = await benchRedis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  let amqp: BenchAmqp | undefined;
  try {
    if (useAmqp) amqp = await benchAmqp(process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
    const env: Record<string, string> = {
      SHARDCAST_DEV_MODE: 'true',
      SHARDCAST_HOST: '127.0.0.1',
      SHARDCAST_PORT: '0',
      SHARDCAST_SHARDS: String(shards),
      SHARDCAST_LOG_LEVEL: 'info',
      SHARDCAST_REDIS_URL: redis.url,
      SHARDCAST_REDIS_PREFIX: redis.prefix,
      SHARDCAST_DRAIN_SPREAD_MS: String(SPREAD_MS),
      SHARDCAST_DRAIN_TIMEOUT_MS: '30000',
      SHARDCAST_MAX_CONNECTIONS_PER_USER: '4',
      ...(amqp ? { SHARDCAST_AMQP_URL: amqp.url, SHARDCAST_AMQP_EXCHANGE: amqp.exchange, SHARDCAST_AMQP_PARTITIONS: String(BENCH_AMQP_PARTITIONS) } : {}),
    };
    const loadBefore = loadavg();
    const started = Date.now();
    const r = await runRollout({
      clients,
      sessions: SESSIONS,
      eventsPerS: EVENTS_PER_S,
      ...(amqp ? { amqp: { url: amqp.url, exchange: amqp.exchange } } : {}),
      startInstance: () => startInstance(env),
      log: (line) => process.stderr.write(`rollout: ${line}\n`),
      joinTimeoutMs: 600_000,
    });
    const loadAfter = loadavg();
    const summary = {
      scenario: 'rollout',
      clients,
      sessions: SESSIONS.length,
      events_per_s: EVENTS_PER_S,
      ingress: amqp ? 'HTTP (5 sessions) + RabbitMQ (5 sessions)' : 'HTTP',
      shards_per_instance: shards,
      drain_spread_ms: SPREAD_MS,
      events_per_session: r.published,
      join_ms: r.joinMs,
      rollout_ms: r.rolloutMs,
      drain_exit_codes: r.drainExitCodes,
      failed_joins: r.failedJoins,
      goaways: r.goaways,
      resumes: r.resumeMs.length,
      drops_before_join: r.dropsBeforeJoin,
      failed_resume_attempts: r.failedAttempts,
      lost: r.lost,
      delivered_twice: r.rawDuplicates,
      not_recovered: r.notRecovered,
      clients_behind: r.behind.length,
      resume_p50_ms: percentile(r.resumeMs, 50),
      resume_p90_ms: percentile(r.resumeMs, 90),
      resume_p99_ms: percentile(r.resumeMs, 99),
      resume_max_ms: r.resumeMs.at(-1) ?? NaN,
      publish_retries: r.publishRetries,
      cpu_s: r.cpu,
      wall_s: Math.round((Date.now() - started) / 1000),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}`,
      load_before: loadBefore.map((l) => Math.round(l * 100) / 100),
      load_after: loadAfter.map((l) => Math.round(l * 100) / 100),
    };
    if (args.includes('--json')) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      const lines = [
        `rollout: 3 instances (${shards} shards each) on Redis${amqp ? ' and RabbitMQ' : ''}, each replaced in turn (new one ready, old one SIGTERMed, go-aways spread over ${SPREAD_MS} ms)`,
        `machine: ${summary.machine}; load ${summary.load_before.join(' ')} before, ${summary.load_after.join(' ')} after`,
        '',
        '| clients | ingress | events per session | go-aways | resumes | lost | delivered twice | not recovered | reconnect → resumed p50 / p90 / p99 / max ms | drain exit codes |',
        '|--:|:--|--:|--:|--:|--:|--:|--:|:--|:--|',
        `| ${clients} | ${summary.ingress} | ${r.published} | ${r.goaways} | ${r.resumeMs.length} | ${r.lost} | ${r.rawDuplicates} | ${r.notRecovered} | ${summary.resume_p50_ms} / ${summary.resume_p90_ms} / ${summary.resume_p99_ms} / ${summary.resume_max_ms} | ${r.drainExitCodes.join(', ')} |`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return r.lost === 0 && r.rawDuplicates === 0 && r.notRecovered === 0 && r.behind.length === 0 && r.failedJoins === 0 ? 0 : 1;
  } finally {
    await redis.cleanUp();
    await amqp?.cleanUp();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`rollout: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
