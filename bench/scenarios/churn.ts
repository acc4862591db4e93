/**
 * churn: stable subscribers receive a steady broadcast while, on every client
 * thread, short-lived clients connect, join, stay 20–200 ms, leave and disconnect
 * in a loop. The stable clients must get every event; once everyone is gone the
 * server's threads, descriptors and memory should be back near their baseline.
 */
import type { BenchOptions } from '../cli-options.js';
import { sampleProcess } from '../targets/process-stats.js';
import { runBroadcast, type BenchResult } from './broadcast-run.js';
import type { ScenarioRun } from './scenario.js';

const SETTLE_MS = 3000;

/** Runs churn against one target. */
export const churn: ScenarioRun = async (target, generator, options: BenchOptions, progress): Promise<BenchResult> => {
  const { result, base, load } = await runBroadcast(
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
  // The publisher's keep-alive sockets would count as the server's descriptors.
  target.publisher.close();
  progress.update(`churn ${target.name}: settling ${SETTLE_MS / 1000} s`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const end = sampleProcess(target.pid);
  result.churn_concurrency = options.churn;
  result.churn_cycles = load.churnCycles;
  result.churn_failures = load.churnFailures;
  result.churn_frames = load.churnFrames;
  result.rss_base_mb = Math.round(base.rssKb / 102.4) / 10;
  result.rss_end_mb = Math.round(end.rssKb / 102.4) / 10;
  result.fds_base = base.fds;
  result.fds_end = end.fds;
  result.threads_base = base.threads;
  result.threads_end = end.threads;
  return result;
};
