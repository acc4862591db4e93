/**
 * The engines end-to-end continuity tests run on: the plain standalone engine, the
 * same engine behaving like a network between instances (messages late and
 * jittered, 3 % dropped, history replies delayed so they reorder against live
 * frames), and the Redis engine on the machine's Redis (a key prefix of its own for
 * every daemon started). A suite that passes on all three cannot depend on bus
 * timing.
 */
import { REDIS_URL, uniquePrefix } from './redis.js';

/** One engine configuration: its name and the daemon environment that selects it. */
export interface EngineUnderTest {
  name: string;
  env: Record<string, string>;
}

/** Both engines; `seed` varies the network's fault sequence between files. */
export function engines(seed = 1): EngineUnderTest[] {
  return [
    { name: 'plain engine', env: {} },
    {
      name: 'network-like engine',
      env: {
        SHARDCAST_TEST_HOOKS: 'true',
        SHARDCAST_STREAM_CHECK_MS: '100',
        SHARDCAST_TEST_NETWORK: JSON.stringify({ delayMs: 2, jitterMs: 6, dropRate: 0.03, historyDelayMs: 15, seed }),
      },
    },
    {
      name: 'redis engine',
      // A getter: each daemon gets a fresh prefix, so tests never share sessions.
      get env() {
        return { SHARDCAST_REDIS_URL: REDIS_URL, SHARDCAST_REDIS_PREFIX: uniquePrefix('e2e') };
      },
    },
  ];
}
