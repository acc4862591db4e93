/**
 * churn: stable subscribers receive a steady broadcast while, on every client
 * thread, short-lived clients connect, join, stay 20–200 ms, leave and disconnect
 * in a loop. The stable clients must get every event; once everyone is gone the
 * server's threads, descriptors and memory should be back near their baseline.
 *
 * The run is done `--rounds` times (default 2): a fresh process's RSS is below what its heap
 * settles at after the first load, so the round-1 → round-2 growth, not the
 * difference to the untouched process, is what shows a leak.
 */
import type { BenchOptions } from '../cli-options.js';
import { sampleProcesses, type ProcessSample } from '../targets/process-stats.js';
import { targetPids } from '../targets/target.js';
import { runBroadcast, type BenchResult } from './broadcast-run.js';
import type { ScenarioRun } from './scenario.js';

const SETTLE_MS = 3000;

const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

/** Runs churn against one target. */
export const churn: ScenarioRun = async (target, generator, options: BenchOptions, progress): Promise<BenchResult> => {
  const ends: ProcessSample[] = [];
  let first: ProcessSample | undefined;
  let result: BenchResult | undefined;
  let cycles = 0;
  let failures = 0;
  let churnFrames = 0;
  for (let round = 1; round <= options.rounds; round++) {
    const outcome = await runBroadcast(
      target,
      generator,
      {
        scenario: 'churn',
        clients: options.clients,
        sessionCount: options.sessions,
        events: options.events,
        rate: options.rate,
        warmup: options.warmup,
        churnPerThread: Math.max(1, Math.round(options.churn / generator.threads)),
        churnHoldMs: [20, 200],
      },
      progress,
    );
    first ??= outcome.base;
    // The publisher's keep-alive sockets would count as the server's descriptors.
    target.publisher.close();
    progress.update(`churn ${target.name}: round ${round} settling ${SETTLE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    ends.push(sampleProcesses(targetPids(target)));
    cycles += outcome.load.churnCycles;
    failures += outcome.load.churnFailures;
    churnFrames += outcome.load.churnFrames;
    // Every round must deliver everything to its stable clients: report the worse one.
    if (!result || outcome.result.lost + outcome.result.duplicated > result.lost + result.duplicated) result = outcome.result;
  }
  if (!result || !first) throw new Error('bench: churn ran no round');
  const last = ends[ends.length - 1];
  result.rounds = options.rounds;
  result.rss_end_rounds_mb = ends.map((e) => mb(e.rssKb)).join(' → ');
  result.churn_concurrency = options.churn;
  result.churn_cycles = cycles;
  result.churn_failures = failures;
  result.churn_frames = churnFrames;
  result.rss_base_mb = mb(first.rssKb);
  result.rss_end_round1_mb = mb(ends[0].rssKb);
  result.rss_end_mb = mb(last.rssKb);
  result.fds_base = first.fds;
  result.fds_end = last.fds;
  result.threads_base = first.threads;
  result.threads_end = last.threads;
  return result;
};
