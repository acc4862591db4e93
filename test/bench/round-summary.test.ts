/**
 * `--repeat`: rounds rotate the target order, and the summary compares each target
 * with the baseline within a round before taking medians, so a round on a busy
 * machine moves both sides of its comparison.
 */
import t from 'tap';
import { parseBenchArgs } from '../../bench/cli-options.js';
import { roundOrder, summarizeRounds } from '../../bench/round-summary.js';
import type { BenchResult } from '../../bench/scenarios/broadcast-run.js';

function row(target: string, round: number, p50: number, cpu: number | null, lost = 0): BenchResult {
  return {
    scenario: 'fanout',
    target,
    clients: 10,
    sessions: 1,
    events: 5,
    expected: 50,
    delivered: 50 - lost,
    lost,
    duplicated: 0,
    p50_ms: p50,
    p90_ms: p50 + 1,
    p99_ms: p50 + 2,
    max_ms: p50 + round,
    frames_per_s: 100,
    server_cpu_us_per_frame: cpu,
    server_rss_mb: 100,
    client_cpu_us_per_frame: 10,
    rate: 20,
    failed_connections: 0,
    closed_early: 0,
    unexpected: 0,
    round,
  };
}

t.test('each round starts with another target', async (t) => {
  t.same(roundOrder(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  t.same(roundOrder(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  t.same(roundOrder(['a', 'b', 'c'], 2), ['c', 'a', 'b']);
  t.same(roundOrder(['a', 'b', 'c'], 3), ['a', 'b', 'c']);
});

t.test('differences and ratios are taken within a round, then their median', async (t) => {
  const rows = [
    row('base', 1, 8, 10),
    row('other', 1, 9, 11),
    // A busy round: both slower; the within-round difference stays small.
    row('other', 2, 20, 26),
    row('base', 2, 19.5, 20),
    row('base', 3, 8, 10, 1),
    row('other', 3, 11, 15),
  ];
  const [base, other] = summarizeRounds(rows, 'base');
  t.equal(base.target, 'base');
  t.equal(base.round, 'median of 3');
  t.equal(base.p50_ms, 8);
  t.equal(base.server_cpu_us_per_frame, 10);
  t.equal(base.lost, 1, 'a loss in any round is kept');
  t.equal(base.p50_minus_base_ms, null);
  t.equal(other.p50_ms, 11);
  t.equal(other.p50_minus_base_ms, 1, 'median of +1, +0.5, +3');
  t.equal(other.cpu_per_frame_over_base, 1.3, 'median of 1.1, 1.3, 1.5');
  t.equal(other.per_round_p50_minus_base_ms, '1 / 0.5 / 3');
  t.equal(other.max_ms, 22, 'the worst max over the rounds (20 + 2, round 2)');
});

t.test('a target missing from a round (it failed) is compared only where both ran', async (t) => {
  const rows = [row('base', 1, 8, 10), row('other', 1, 10, 12), row('other', 2, 30, 40)];
  const [, other] = summarizeRounds(rows, 'base');
  t.equal(other.p50_minus_base_ms, 2);
  t.equal(other.cpu_per_frame_over_base, 1.2);
});

t.test('--repeat is parsed and checked', async (t) => {
  t.equal(parseBenchArgs(['fanout']).repeat, 1);
  t.equal(parseBenchArgs(['fanout', '--repeat', '4']).repeat, 4);
  t.throws(() => parseBenchArgs(['fanout', '--repeat', '0']), /--repeat needs a positive integer/);
});
