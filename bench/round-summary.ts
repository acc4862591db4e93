/**
 * `--repeat N`: the targets run N times, each round in a rotated order so no target
 * always runs first (on a warm or a cold machine), and each target is compared
 * with the first target of `--targets` (the baseline) within the same round, where
 * both saw the same machine. A round's differences are then summarized by their
 * median: on a shared 2-core machine a single run's CPU figure moves by ±20 %, far
 * more than the differences the Redis budgets are about.
 */
import type { BenchResult } from './scenarios/broadcast-run.js';

/** The order of round `round` (0-based): the list rotated by the round. */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  const k = round % targets.length;
  return [...targets.slice(k), ...targets.slice(0, k)];
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const round2 = (n: number | null): number | null => (n === null ? null : Math.round(n * 100) / 100);

/**
 * One row per target: medians over its rounds of p50, p99 and server CPU per frame,
 * and (except for the baseline) the medians of its per-round difference in p50 and
 * ratio of CPU per frame to the baseline's. Rows carry `round` (1-based); delivery
 * counts are summed, so a loss in any round shows.
 */
export function summarizeRounds(rows: readonly BenchResult[], baseline: string): BenchResult[] {
  const byRound = new Map<unknown, Map<string, BenchResult>>();
  for (const row of rows) {
    const round = byRound.get(row.round) ?? new Map<string, BenchResult>();
    round.set(row.target, row);
    byRound.set(row.round, round);
  }
  const targets = [...new Set(rows.map((r) => r.target))];
  return targets.map((target) => {
    const own = rows.filter((r) => r.target === target);
    const deltas: number[] = [];
    const ratios: number[] = [];
    for (const round of byRound.values()) {
      const mine = round.get(target);
      const base = round.get(baseline);
      if (mine === undefined || base === undefined || target === baseline) continue;
      deltas.push(mine.p50_ms - base.p50_ms);
      if (mine.server_cpu_us_per_frame !== null && base.server_cpu_us_per_frame !== null && base.server_cpu_us_per_frame > 0) {
        ratios.push(mine.server_cpu_us_per_frame / base.server_cpu_us_per_frame);
      }
    }
    const sum = (key: 'expected' | 'delivered' | 'lost' | 'duplicated' | 'failed_connections' | 'closed_early' | 'unexpected') =>
      own.reduce((n, r) => n + r[key], 0);
    const cpu = own.map((r) => r.server_cpu_us_per_frame).filter((v): v is number => v !== null);
    const summary: BenchResult = {
      ...own[0],
      round: `median of ${own.length}`,
      expected: sum('expected'),
      delivered: sum('delivered'),
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      failed_connections: sum('failed_connections'),
      closed_early: sum('closed_early'),
      unexpected: sum('unexpected'),
      p50_ms: round2(median(own.map((r) => r.p50_ms))) ?? 0,
      p90_ms: round2(median(own.map((r) => r.p90_ms))) ?? 0,
      p99_ms: round2(median(own.map((r) => r.p99_ms))) ?? 0,
      max_ms: Math.max(...own.map((r) => r.max_ms)),
      server_cpu_us_per_frame: round2(median(cpu)),
      client_cpu_us_per_frame: round2(median(own.map((r) => r.client_cpu_us_per_frame).filter((v): v is number => v !== null))),
      server_rss_mb: round2(median(own.map((r) => r.server_rss_mb))) ?? 0,
      [`p50_minus_${baseline}_ms`]: target === baseline ? null : round2(median(deltas)),
      [`cpu_per_frame_over_${baseline}`]: target === baseline ? null : round2(median(ratios)),
      [`per_round_p50_minus_${baseline}_ms`]: target === baseline ? null : deltas.map((d) => round2(d)).join(' / '),
      [`per_round_cpu_over_${baseline}`]: target === baseline ? null : ratios.map((r) => round2(r)).join(' / '),
    };
    return summary;
  });
}
