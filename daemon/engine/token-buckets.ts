/**
 * Token buckets by key, in this thread's memory: each holds at most `burst` tokens,
 * refills at `perMs` tokens a millisecond, and is full when first seen. A bucket
 * that has refilled to full carries no information, so such buckets are forgotten
 * (looked for at most every `sweepMs`, on a take): memory follows the keys active
 * within one refill, not every key ever seen. Used by the standalone command
 * limiter (command-limiter.ts) and the per-user replay budget (primary/replay-budgets.ts).
 */

interface Bucket {
  tokens: number;
  at: number;
  burst: number;
  perMs: number;
}

/** Keyed token buckets; see the header comment. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private sweptAt = 0;

  constructor(private readonly sweepMs: number) {}

  /**
   * The tokens `key`'s bucket holds at `now`, before this take; `n` of them are
   * taken when there are that many, none otherwise.
   */
  take(key: string, n: number, burst: number, perMs: number, now: number): number {
    this.sweep(now);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: burst, at: now, burst, perMs };
      this.buckets.set(key, bucket);
    } else {
      bucket.burst = burst;
      bucket.perMs = perMs;
      refill(bucket, now);
    }
    const had = bucket.tokens;
    if (had >= n) bucket.tokens -= n;
    return had;
  }

  /** Buckets held (not yet forgotten). */
  get size(): number {
    return this.buckets.size;
  }

  clear(): void {
    this.buckets.clear();
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < this.sweepMs) return;
    this.sweptAt = now;
    for (const [key, bucket] of this.buckets) {
      refill(bucket, now);
      if (bucket.tokens >= bucket.burst) this.buckets.delete(key);
    }
  }
}

function refill(bucket: Bucket, now: number): void {
  const elapsed = now - bucket.at;
  if (elapsed <= 0) return;
  bucket.tokens = Math.min(bucket.burst, bucket.tokens + elapsed * bucket.perMs);
  bucket.at = now;
}
