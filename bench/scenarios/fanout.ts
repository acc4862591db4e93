/**
 * fanout: one session, N clients, E events at a steady rate — delivered fraction,
 * publish → receipt latency percentiles and the server's CPU per delivered frame.
 */
import type { BenchOptions } from '../cli-options.js';
import { runBroadcast, type BenchResult } from './broadcast-run.js';
import type { ScenarioRun } from './scenario.js';

/** Runs fanout against one target. */
export const fanout: ScenarioRun = async (target, generator, options: BenchOptions, progress): Promise<BenchResult> => {
  const { result } = await runBroadcast(
    target,
    generator,
    { scenario: 'fanout', clients: options.clients, sessionCount: 1, events: options.events, rate: options.rate, warmup: options.warmup },
    progress,
  );
  return result;
};
