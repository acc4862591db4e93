/**
 * A connection's budget of history replay bytes: a token bucket of `perSecond`
 * bytes a second, holding at most `burst`. A join with an old position costs the
 * bytes of its replay; when the budget cannot cover a replay, the join gets the
 * snapshot instead (SPEC §8), so rejoining in a loop cannot turn a 30-byte frame
 * into megabytes of history again and again. Owned by the shard thread.
 */
export class ReplayBudget {
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly perSecond: number, private readonly burst: number, now: number) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Bytes a replay may take now (0 when the budget is spent). */
  available(now: number): number {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.refilledAt = now;
    }
    return Math.max(0, Math.floor(this.tokens));
  }

  /** Takes the bytes a replay was sent with. */
  spend(bytes: number): void {
    this.tokens -= bytes;
  }
}
