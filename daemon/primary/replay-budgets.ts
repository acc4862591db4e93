/**
 * History replay bytes per user on this instance: a token bucket per user of
 * `perSecond` bytes a second, holding at most `burst`, shared by all of the user's
 * connections whichever shard holds them (every join's history read passes through
 * the primary). A join with an old position costs the bytes of its replay; when the
 * bucket cannot cover a replay, or it is over `perJoin`, the join gets the snapshot
 * instead (SPEC §8). So neither rejoining in a loop nor opening more connections
 * turns a 30-byte frame into megabytes of history again and again, and a new
 * connection does not bring a fresh budget. Owned by the primary thread.
 */

interface Bucket {
  tokens: number;
  refilledAt: number;
}

/** How often buckets that have filled up again are forgotten (on the next take). */
const SWEEP_MS = 10_000;

/** The per-user replay buckets; see the header. */
export class ReplayBudgets {
  private readonly buckets = new Map<string, Bucket>();
  private sweptAt = 0;

  constructor(private readonly perSecond: number, private readonly burst: number, private readonly perJoin: number) {}

  /** Takes `bytes` of `user`'s budget and returns true, or returns false (nothing taken) when they are past it. */
  take(user: string, bytes: number, now: number): boolean {
    if (bytes === 0) return true;
    if (bytes > this.perJoin) return false;
    this.sweep(now);
    let bucket = this.buckets.get(user);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, refilledAt: now };
      this.buckets.set(user, bucket);
    } else this.refill(bucket, now);
    if (bytes > bucket.tokens) return false;
    bucket.tokens -= bytes;
    return true;
  }

  /** Users with a bucket not yet full again (memory held). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsed = now - bucket.refilledAt;
    if (elapsed <= 0) return;
    bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsed * this.perSecond) / 1000);
    bucket.refilledAt = now;
  }

  /** Forgets full buckets: a user without one starts full, so nothing changes but memory. */
  private sweep(now: number): void {
    if (now - this.sweptAt < SWEEP_MS) return;
    this.sweptAt = now;
    for (const [user, bucket] of this.buckets) {
      this.refill(bucket, now);
      if (bucket.tokens >= this.burst) this.buckets.delete(user);
    }
  }
}
