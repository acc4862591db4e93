/**
 * sessions: S sessions × C clients each, every tick one event to every session at a
 * steady rate — throughput and latency with many small sessions.
 */
import type { BenchOptions } from '../cli-options.js';
import { runBroadcast, type BenchResult } from './broadcast-run.js';
import type { ScenarioRun } from './scenario.js';

/** Runs sessions against one target. */
export const sessions: ScenarioRun = async (target, generator, options: BenchOptions, progress): Promise<BenchResult> => {
  const { result } = await runBroadcast(
    target,
    generator,
    { scenario: 'sessions', clients: options.clients, sessionCount: options.sessions, events: options.events, rate: options.rate, warmup: options.warmup },
    progress,
  );
  result.clients_per_session = Math.round((options.clients / options.sessions) * 10) / 10;
  result.events_per_s = Math.round(result.rate * options.sessions);
  return result;
};
