/**
 * The engines end-to-end continuity tests run on: the plain standalone engine, and
 * the same engine behaving like a network between instances (messages late and
 * jittered, 3 % dropped, history replies delayed so they reorder against live
 * frames). A suite that passes on both cannot depend on bus timing.
 */

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
  ];
}
