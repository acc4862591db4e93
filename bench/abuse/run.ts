/**
 * The long abuse run: `node dist/bench/abuse/run.js [--seconds S] [--attackers A]
 * [--seed N] [--shards K] [--settle S] [--shapes a,b] [--no-nice] [--malloc-defaults]
 * [--json]` (--shapes: only those attack shapes, to find which one costs what;
 * --settle: seconds to watch the daemon's RSS come back after the attacks, default 60;
 * --malloc-defaults: without the malloc settings of daemon/allocator.ts). SHARDCAST_*,
 * MALLOC_* and LD_PRELOAD in its environment reach the daemon. Starts the built daemon (dev mode,
 * port 0, loopback), runs bench/abuse/abuse.ts against it (the attackers at nice 10
 * unless --no-nice, the canary and /healthz probe in a process of their own at the
 * daemon's priority), stops it (SIGTERM), and prints
 * the report with a verdict on the hardening issue's bars: the daemon stayed up,
 * `/healthz` always answered within 100 ms, the canary got every seq in order with
 * p99 under 100 ms, and RSS came back within 20 % of its baseline. Exit 1 when a
 * bar was missed, 2 on a bad command line.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { runAbuse } from './abuse.js';
import { PRIMARY_LOOP_MONITOR_MS } from '../../daemon/admin/metrics.js';
import { ALLOCATOR_ENV } from '../../daemon/allocator.js';
import { serverNodeArgs } from '../targets/target.js';

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`abuse: --${name} needs a non-negative integer, got ${args[at + 1]}\n`);
    process.exit(2);
  }
  return value;
}

/** The values of every series of metric `name` in a Prometheus text exposition. */
function metricValues(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))].map((m) => Number(m[1]));
}

/**
 * Scrapes the daemon's /metrics every 2 s: the worst p99 event-loop delay of its
 * primary and of its shards over the run, to tell the daemon's own stalls from
 * queueing elsewhere.
 */
function watchEventLoops(url: string): { stop(): { primary: number; shards: number } } {
  const worst = { primary: 0, shards: 0 };
  const read = (text: string, name: string): number[] => metricValues(text, name).map((s) => Math.round(s * 1000));
  const timer = setInterval(() => {
    fetch(url, { signal: AbortSignal.timeout(1500) })
      .then((res) => res.text())
      .then((text) => {
        // prom-client's figure includes its sampling period; the shards' already leave theirs out.
        worst.primary = Math.max(worst.primary, ...read(text, 'nodejs_eventloop_lag_p99_seconds').map((ms) => Math.max(0, ms - PRIMARY_LOOP_MONITOR_MS)));
        worst.shards = Math.max(worst.shards, ...read(text, 'shardcast_event_loop_delay_p99_seconds'));
      })
      .catch(() => {});
  }, 2000);
  return {
    stop() {
      clearInterval(timer);
      return worst;
    },
  };
}

/** Where the daemon's memory is, from its /metrics: V8 heaps and the primary's external memory, in MB. */
interface MemoryBreakdown {
  primaryHeapUsedMb: number;
  primaryHeapTotalMb: number;
  primaryExternalMb: number;
  shardHeapsUsedMb: number;
  /** Sessions the shards hold members of, and the sessions the instance streams. */
  shardSessions: number;
  streamedSessions: number;
}

async function memoryBreakdown(url: string): Promise<MemoryBreakdown | undefined> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(3000) })).text();
    const sum = (name: string) => metricValues(text, name).reduce((n, v) => n + v, 0);
    const mb = (bytes: number) => Math.round(bytes / 1048576);
    return {
      primaryHeapUsedMb: mb(sum('nodejs_heap_size_used_bytes')),
      primaryHeapTotalMb: mb(sum('nodejs_heap_size_total_bytes')),
      primaryExternalMb: mb(sum('nodejs_external_memory_bytes')),
      shardHeapsUsedMb: mb(sum('shardcast_shard_heap_used_bytes')),
      shardSessions: sum('shardcast_sessions'),
      streamedSessions: sum('shardcast_streamed_sessions'),
    };
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const seconds = option(args, 'seconds', 120);
  const attackers = option(args, 'attackers', 8);
  const seed = option(args, 'seed', 1);
  const shards = option(args, 'shards', availableParallelism());
  const settle = option(args, 'settle', 60);
  const main = fileURLToPath(new URL('../../daemon/main.js', import.meta.url));
  // Node flags for the daemon only, as for the bench targets (e.g. --cpu-prof).
  const nodeArgs = serverNodeArgs();
  const daemon = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      PATH: process.env.PATH,
      // Started as npm start and the image start it, unless --malloc-defaults.
      ...(args.includes('--malloc-defaults') ? {} : ALLOCATOR_ENV),
      // Settings given to the run (e.g. SHARDCAST_COMMAND_JOURNAL_BYTES, glibc's
      // MALLOC_* or an LD_PRELOAD allocator) reach the daemon; these below are the run's own.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SHARDCAST_') || k.startsWith('MALLOC_') || k === 'LD_PRELOAD')),
      SHARDCAST_DEV_MODE: 'true',
      SHARDCAST_HOST: '127.0.0.1',
      SHARDCAST_PORT: '0',
      SHARDCAST_SHARDS: String(shards),
      SHARDCAST_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let crashes = 0;
  let adminPort = 0;
  // BENCH_DAEMON_OUTPUT=<file>: a copy of the daemon's stdout (its log; with --trace-gc, its GC lines).
  const copy = process.env.BENCH_DAEMON_OUTPUT ? createWriteStream(process.env.BENCH_DAEMON_OUTPUT) : undefined;
  const port = await new Promise<number>((resolve, reject) => {
    daemon.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      copy?.write(chunk);
      out += chunk;
      crashes += (chunk.match(/"shard crashed"/g) ?? []).length;
      const m = /"port":(\d+)[^\n]*"adminPort":(\d+)[^\n]*"msg":"listening"/.exec(out);
      if (m) {
        adminPort = Number(m[2]);
        resolve(Number(m[1]));
      }
    });
    daemon.once('exit', (code) => reject(new Error(`the daemon exited (${code}) before listening`)));
  });
  process.stderr.write(`abuse: daemon on port ${port}, ${attackers} attackers for ${seconds} s, seed ${seed}\n`);
  const metricsUrl = `http://127.0.0.1:${adminPort}/metrics`;
  const memoryAtStart = await memoryBreakdown(metricsUrl);
  const loops = watchEventLoops(metricsUrl);
  const report = await runAbuse({
    ws: `ws://127.0.0.1:${port}/v1/ws`,
    http: `http://127.0.0.1:${port}`,
    pid: daemon.pid,
    durationMs: seconds * 1000,
    attackers,
    seed,
    attackerNice: args.includes('--no-nice') ? undefined : 10,
    settleMs: settle * 1000,
    ...(args.includes('--shapes') ? { shapes: (args[args.indexOf('--shapes') + 1] ?? '').split(',').filter(Boolean) } : {}),
  });
  const loopDelay = loops.stop();
  const memoryAtEnd = await memoryBreakdown(metricsUrl);
  const alive = daemon.exitCode === null && daemon.signalCode === null;
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  const rss = report.rss;
  const bars = {
    'daemon stayed up, no shard crashed': alive && crashes === 0,
    '/healthz always answered within 100 ms': report.health.failures === 0 && report.health.latency.max < 100,
    'canary got every seq, in order, once': report.canary.inOrder && report.canary.missing === 0 && report.canary.duplicates === 0,
    'canary p99 under 100 ms': report.canary.latency.p99 < 100,
    [`RSS back within 20 % of its baseline (within ${settle} s)`]: rss === undefined || rss.backAfterS != null,
  };
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ ...report, daemonLoopDelayMs: loopDelay, shardCrashes: crashes, memoryAtStart, memoryAtEnd, bars }, null, 2)}\n`);
  } else {
    const lines = [
      `seed ${report.seed}, ${report.durationMs / 1000} s, ${attackers} attackers, ${shards} shards`,
      `hostile frames ${report.hostileFrames}, hostile requests ${report.hostileRequests}`,
      `shapes ${JSON.stringify(report.shapes)}`,
      `attackers' closes ${JSON.stringify(report.closeCodes)}`,
      `canary: published ${report.canary.published}, received ${report.canary.received}, missing ${report.canary.missing}, dup ${report.canary.duplicates}, in order ${report.canary.inOrder}, latency p50 ${report.canary.latency.p50} p99 ${report.canary.latency.p99} max ${report.canary.latency.max} ms`,
      `daemon's event-loop delay, worst 2 s p99: primary ${loopDelay.primary} ms, shards ${loopDelay.shards} ms`,
      `attackers' own event-loop delay: p50 ${report.attackerLagMs?.p50} p99 ${report.attackerLagMs?.p99} max ${report.attackerLagMs?.max} ms`,
      `upstream: read ${report.upstream.commands} commands in ${report.upstream.pages} pages, ${report.upstream.failures} failed requests`,
      `/healthz: ${report.health.latency.count} probes, p50 ${report.health.latency.p50} p99 ${report.health.latency.p99} max ${report.health.latency.max} ms, failures ${report.health.failures}`,
      rss
        ? `RSS MB: baseline ${rss.baselineMb}, peak ${rss.peakMb}, 1 s after ${rss.endMb}, then every 5 s ${rss.settleMb?.join(' ') ?? '–'}; back within 20 % after ${rss.backAfterS ?? 'never'} s`
        : 'RSS: not measured',
      `memory from /metrics, at start → after the settle: ${memoryLine(memoryAtStart)} → ${memoryLine(memoryAtEnd)}`,
      ...Object.entries(bars).map(([bar, ok]) => `${ok ? 'met   ' : 'MISSED'} ${bar}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return Object.values(bars).every(Boolean) ? 0 : 1;
}

function memoryLine(m: MemoryBreakdown | undefined): string {
  if (m === undefined) return '(no answer)';
  return `primary heap ${m.primaryHeapUsedMb}/${m.primaryHeapTotalMb} MB, external ${m.primaryExternalMb} MB, shard heaps ${m.shardHeapsUsedMb} MB, sessions ${m.shardSessions} on shards / ${m.streamedSessions} streamed`;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`abuse: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
