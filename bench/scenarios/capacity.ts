/**
 * capacity: N idle connections joined to sessions, held with heartbeats, then one
 * broadcast to prove they are all alive — server memory per connection and the
 * connect rate. RSS is read before the first connection and after the hold.
 */
import type { BenchOptions } from '../cli-options.js';
import { runBroadcast, type BenchResult } from './broadcast-run.js';
import type { ScenarioRun } from './scenario.js';

/** Runs capacity against one target. */
export const capacity: ScenarioRun = async (target, generator, options: BenchOptions, progress): Promise<BenchResult> => {
  const { result, base, loaded, load } = await runBroadcast(
    target,
    generator,
    {
      scenario: 'capacity',
      clients: options.clients,
      sessionCount: options.sessions,
      events: options.events,
      rate: options.rate,
      warmup: options.warmup,
      holdMs: options.holdS * 1000,
      heartbeatMs: 5000,
      connectTimeoutMs: 60_000,
    },
    progress,
  );
  const connections = load.joined;
  result.connections = connections;
  result.connect_s = Math.round(load.connectMs / 10) / 100;
  result.connect_rate_per_s = load.connectMs > 0 ? Math.round(connections / (load.connectMs / 1000)) : 0;
  result.rss_base_mb = Math.round(base.rssKb / 102.4) / 10;
  result.rss_loaded_mb = Math.round(loaded.rssKb / 102.4) / 10;
  result.rss_per_conn_kb = connections > 0 ? Math.round(((loaded.rssKb - base.rssKb) / connections) * 100) / 100 : 0;
  result.server_fds = loaded.fds;
  return result;
};
