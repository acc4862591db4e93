/**
 * Frames dropped, conflated or discarded, by reason and namespace: every place a
 * frame can stop short of a client counts here (docs/metrics.md,
 * `shardcast_frames_dropped_total`). Counts are arrays indexed by the namespace's
 * small index (config/namespaces.ts ResolvedNamespace.index), so counting on a hot
 * path is one array increment, no string building and no allocation once the array
 * has grown to that index. Shards count theirs (shard/shard-counters.ts), the
 * primary's session streams theirs; snapshots are plain data (structured clone).
 */

/** Reasons counted on a shard thread. */
export const SHARD_DROP_REASONS = [
  /** Replaced in a lag queue by a newer frame of the same snapshot key: the client gets the newer one. */
  'conflated',
  /** Left in the lag queue of a connection cut off as a slow consumer (4001): it resumes them from history. */
  'slow_consumer',
  /** Left in the lag queue of a connection sent its drain go-away: it resumes them from history. */
  'go_away',
  /** Left in the lag queue of a connection an admin kicked. */
  'kicked',
  /** Routed to the shard a second time (a bug guard: should stay 0; nothing lost). */
  'shard_duplicate',
] as const;

/** Reasons counted by the primary's session streams. */
export const STREAM_DROP_REASONS = [
  /** A copy of a frame the stream already forwarded (bus redelivery, heal overlap): nothing lost. */
  'stream_duplicate',
  /** A frame of an epoch the stream has left (its clients got a resync). */
  'stream_stale',
  /** Frames history could no longer give back to fill a gap (same epoch): clients get "not recovered" and the snapshot. */
  'resync_skipped',
  /** Scheduled frames the release gate held, discarded because the stream resynced past them. */
  'resync_held',
] as const;

export type ShardDropReason = (typeof SHARD_DROP_REASONS)[number];
export type StreamDropReason = (typeof STREAM_DROP_REASONS)[number];
export type DropReason = ShardDropReason | StreamDropReason;

/** Counts by reason, each an array by namespace index (missing or short: zeros). */
export type DropCounts<R extends string = DropReason> = { readonly [K in R]?: readonly number[] };

/** Per-reason, per-namespace counters; see the header comment. */
export class FrameDrops<R extends string> {
  private readonly counts: Record<string, number[]> = {};

  constructor(readonly reasons: readonly R[]) {
    for (const r of reasons) this.counts[r] = [];
  }

  /** Counts `n` frames dropped for `reason` in the namespace with index `ns`. */
  add(reason: R, ns: number, n = 1): void {
    const byNs = this.counts[reason];
    // Grows once per namespace seen (packed, no holes); afterwards a plain increment.
    while (byNs.length <= ns) byNs.push(0);
    byNs[ns] += n;
  }

  /** Frames dropped for `reason`, over all namespaces. */
  total(reason: R): number {
    let sum = 0;
    for (const n of this.counts[reason]) sum += n;
    return sum;
  }

  /** A copy of the counts (plain arrays: crosses threads). */
  snapshot(): DropCounts<R> {
    const out: { [K in R]?: number[] } = {};
    for (const r of this.reasons) out[r] = this.counts[r].slice();
    return out;
  }
}
