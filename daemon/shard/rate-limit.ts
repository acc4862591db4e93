/**
 * Per-connection token bucket for client frames: `perSecond` sustained, `burst` at
 * once. A refused frame is a strike; a connection that keeps sending past the limit
 * (strikes beyond one more burst) is closed with 4002 RateLimited.
 */
import type { Connection } from './connection.js';

/** Outcome of one frame against the limiter. */
export type RateDecision = 'allow' | 'refuse' | 'close';

/** Takes a token for one frame from the connection's bucket. */
export function takeToken(conn: Connection, now: number, perSecond: number, burst: number): RateDecision {
  const elapsed = now - conn.refilledAt;
  if (elapsed > 0) {
    conn.tokens = Math.min(burst, conn.tokens + (elapsed * perSecond) / 1000);
    conn.refilledAt = now;
    if (conn.tokens >= burst) conn.strikes = 0;
  }
  if (conn.tokens >= 1) {
    conn.tokens -= 1;
    return 'allow';
  }
  conn.strikes++;
  return conn.strikes > burst ? 'close' : 'refuse';
}
