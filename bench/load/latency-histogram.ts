/**
 * A log-bucketed latency histogram in whole microseconds: exact below 128 µs, then
 * 64 buckets per power of two (under 1.6 % error), 1,664 counters in all. Cheap to
 * record into, cheap to post between threads (a plain array), and mergeable by
 * addition, so each client worker keeps one and the main thread sums them.
 */

const SUB_BUCKETS = 64;
const BUCKET_COUNT = 1664;
const MAX_VALUE = 2 ** 31 - 1;

function bucketOf(value: number): number {
  const v = value < 0 ? 0 : value > MAX_VALUE ? MAX_VALUE : Math.floor(value);
  if (v < 2 * SUB_BUCKETS) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - 6;
  return (shift + 1) * SUB_BUCKETS + (v >> shift) - SUB_BUCKETS;
}

/** Middle of a bucket's value range, in µs. */
function valueOf(bucket: number): number {
  if (bucket < 2 * SUB_BUCKETS) return bucket;
  const shift = Math.floor(bucket / SUB_BUCKETS) - 1;
  const low = ((bucket % SUB_BUCKETS) + SUB_BUCKETS) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}

/** Latency histogram (µs). */
export class LatencyHistogram {
  readonly counts: number[];
  count = 0;
  max = 0;

  constructor(counts?: readonly number[], max = 0) {
    this.counts = counts ? [...counts] : new Array<number>(BUCKET_COUNT).fill(0);
    this.count = this.counts.reduce((sum, n) => sum + n, 0);
    this.max = max;
  }

  /** Records one latency in µs. */
  record(us: number): void {
    this.counts[bucketOf(us)]++;
    this.count++;
    if (us > this.max) this.max = us;
  }

  /** Adds another histogram's counts into this one. */
  merge(other: { counts: readonly number[]; max: number }): void {
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const n = other.counts[i];
      if (n) {
        this.counts[i] += n;
        this.count += n;
      }
    }
    if (other.max > this.max) this.max = other.max;
  }

  /** The value at percentile `p` (0–100) in µs; 0 when empty. The 100th is the exact max. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  /** A plain copy for postMessage. */
  toJSON(): { counts: number[]; max: number } {
    return { counts: this.counts, max: this.max };
  }
}
