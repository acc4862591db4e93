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
import { TokenBuckets } from '../engine/token-buckets.js';

/** How often buckets that have filled up again are forgotten (on the next take). */
const SWEEP_MS = 10_000;

/** The per-user replay buckets; see the header. */
export class ReplayBudgets {
  private readonly buckets = new TokenBuckets(SWEEP_MS);
  private readonly perMs: number;

  constructor(perSecond: number, private readonly burst: number, private readonly perJoin: number) {
    this.perMs = perSecond / 1000;
  }

  /** Takes `bytes` of `user`'s budget and returns true, or returns false (nothing taken) when they are past it. */
  take(user: string, bytes: number, now: number): boolean {
    if (bytes === 0) return true;
    if (bytes > this.perJoin) return false;
    return this.buckets.take(user, bytes, this.burst, this.perMs, now) >= bytes;
  }

  /** Users with a bucket not yet full again (memory held). */
  get size(): number {
    return this.buckets.size;
  }
}
