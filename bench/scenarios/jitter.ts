/**
 * jitter: the SDK under connection jitter, after AnyCable's method. N clients with
 * default SDK settings, spread over several client processes (jitter-clients.ts),
 * join the same sessions; while `events` events are published at `rate`/s, every
 * client's socket is killed without a close frame every 15–20 s and its network kept
 * away for 1 s. Reported: delivered, lost and duplicated events as the application
 * sees them, latency percentiles of all events and of the replayed ones (publish →
 * application), how long outages kept clients away (also counted from the network's
 * return), and the connection attempts it took (a zero backoff would show here).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sampleProcesses } from '../targets/process-stats.js';
import { targetPids } from '../targets/target.js';
import type { BenchResult } from './broadcast-run.js';
import type { JitterCommand, JitterMessage, JitterReport } from './jitter-clients.js';
import type { ScenarioRun } from './scenario.js';

const CHILD = fileURLToPath(new URL('./jitter-clients.js', import.meta.url));
const KILL_EVERY_MS: [number, number] = [15_000, 20_000];
const OFFLINE_MS = 1000;
const JOIN_TIMEOUT_MS = 180_000;
const SETTLE_MS = 20_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10) / 10;
}

/** Waits for one message of `op` from a child, or fails on its exit, an error message or the deadline. */
function expect<K extends JitterMessage['op']>(child: ChildProcess, op: K, timeoutMs: number): Promise<Extract<JitterMessage, { op: K }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`jitter: no '${op}' from a client process within ${timeoutMs / 1000} s`)), timeoutMs);
    const onMessage = (m: JitterMessage): void => {
      if (m.op === op) done(null, m as Extract<JitterMessage, { op: K }>);
      else if (m.op === 'error') done(new Error(`jitter client process: ${m.message}`));
    };
    const onExit = (code: number | null): void => done(new Error(`jitter: a client process exited (${code}) before '${op}'`));
    function done(err: Error | null, m?: Extract<JitterMessage, { op: K }>): void {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Runs jitter against one Shardcast target. */
export const jitter: ScenarioRun = async (target, _generator, options, progress): Promise<BenchResult> => {
  if (target.protocol !== 'shardcast' || !target.name.startsWith('shardcast')) {
    throw new Error(`jitter drives the Shardcast SDK: run it with --targets shardcast (or another shardcast* target), not ${target.name}`);
  }
  const endpoints = target.endpoints ?? [{ host: target.host, port: target.port }];
  const sessions = Array.from({ length: options.sessions }, (_, i) => `jitter:${i}`);
  const processes = Math.max(2, options.threads);
  const children: ChildProcess[] = [];
  try {
    for (let p = 0; p < processes; p++) children.push(fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    progress.update(`jitter ${target.name}: connecting ${options.clients} clients in ${processes} processes`);
    const readies = children.map((child) => expect(child, 'ready', JOIN_TIMEOUT_MS));
    children.forEach((child, p) => {
      const clients = [];
      for (let i = p; i < options.clients; i += processes) {
        const { host, port } = endpoints[i % endpoints.length];
        clients.push({ url: `ws://${host}:${port}/v1/ws`, session: sessions[i % sessions.length], user: `jitter-${i}` });
      }
      child.send({ op: 'start', clients, killEveryMs: KILL_EVERY_MS, offlineMs: OFFLINE_MS } satisfies JitterCommand);
    });
    const failed = (await Promise.all(readies)).reduce((sum, r) => sum + r.failed, 0);

    for (const child of children) child.send({ op: 'jitter' } satisfies JitterCommand);
    const startMs = Date.now();
    for (let i = 0; i < options.events; i++) {
      const wait = startMs + (i * 1000) / options.rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await target.publisher.publish(sessions, i);
      if (i % 10 === 0) progress.update(`jitter ${target.name}: event ${i + 1}/${options.events}`);
    }
    const server = sampleProcesses(targetPids(target));
    progress.update(`jitter ${target.name}: settling`);
    const reports = children.map((child) => expect(child, 'report', SETTLE_MS + 60_000));
    for (const child of children) child.send({ op: 'finish', events: options.events, settleMs: SETTLE_MS } satisfies JitterCommand);
    const parts = (await Promise.all(reports)).map((m) => m.report);
    for (const child of children) child.disconnect();

    const all: JitterReport = {
      clients: 0, expected: 0, delivered: 0, duplicated: 0, latencies: [], replayed: [], replayedAfterReturn: [], outages: [], afterReturn: [], firstTry: [], kills: 0, attempts: 0, disconnects: 0,
    };
    for (const part of parts) {
      all.clients += part.clients;
      all.expected += part.expected;
      all.delivered += part.delivered;
      all.duplicated += part.duplicated;
      all.kills += part.kills;
      all.attempts += part.attempts;
      all.disconnects += part.disconnects;
      for (const key of ['latencies', 'replayed', 'replayedAfterReturn', 'outages', 'afterReturn', 'firstTry'] as const) for (const v of part[key]) all[key].push(v);
    }
    const sorted = (values: number[]) => values.sort((a, b) => a - b);
    const latencies = sorted(all.latencies);
    const replayed = sorted(all.replayed);
    const replayedAfterReturn = sorted(all.replayedAfterReturn);
    const outages = sorted(all.outages);
    const afterReturn = sorted(all.afterReturn);
    const firstTry = sorted(all.firstTry);
    return {
      scenario: 'jitter',
      target: target.name,
      clients: options.clients,
      sessions: options.sessions,
      events: options.events,
      expected: all.expected,
      delivered: all.delivered,
      lost: all.expected - all.delivered,
      duplicated: all.duplicated,
      p50_ms: percentile(latencies, 50),
      p90_ms: percentile(latencies, 90),
      p99_ms: percentile(latencies, 99),
      max_ms: percentile(latencies, 100),
      frames_per_s: options.clients * options.rate,
      server_cpu_us_per_frame: null,
      server_rss_mb: Math.round(server.rssKb / 102.4) / 10,
      client_cpu_us_per_frame: null,
      rate: options.rate,
      failed_connections: failed,
      closed_early: 0,
      unexpected: 0,
      client_processes: processes,
      kills: all.kills,
      replayed_events: replayed.length,
      replay_p50_ms: percentile(replayed, 50),
      replay_p99_ms: percentile(replayed, 99),
      replay_max_ms: percentile(replayed, 100),
      replay_after_return_p50_ms: percentile(replayedAfterReturn, 50),
      replay_after_return_p99_ms: percentile(replayedAfterReturn, 99),
      replay_after_return_max_ms: percentile(replayedAfterReturn, 100),
      away_p50_ms: percentile(outages, 50),
      away_p99_ms: percentile(outages, 99),
      away_max_ms: percentile(outages, 100),
      back_after_return_p50_ms: percentile(afterReturn, 50),
      back_after_return_p99_ms: percentile(afterReturn, 99),
      back_after_return_max_ms: percentile(afterReturn, 100),
      first_try_after_return_p50_ms: percentile(firstTry, 50),
      first_try_after_return_p99_ms: percentile(firstTry, 99),
      first_try_after_return_max_ms: percentile(firstTry, 100),
      reconnect_attempts: all.attempts,
      attempts_per_kill: all.kills > 0 ? Math.round((all.attempts / all.kills) * 100) / 100 : 0,
      disconnects: all.disconnects,
    };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
};
