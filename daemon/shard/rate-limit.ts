/**
 * Client frame limits on a shard. First the connection's token bucket:
 * `perSecond` sustained, `burst` at once; a frame takes one token, and a large one
 * more once its size is known (takeMoreTokens), before it is decoded. A refused frame is a strike; a connection
 * that keeps sending past the limit (strikes beyond one more burst) is closed with
 * 4002 RateLimited. Then, for a frame the bucket allowed, the user's limit shared by
 * all of the user's connections on the instance (threads/user-rates.ts).
 */
import { takeUserFrame, windowOf } from '../threads/user-rates.js';
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

/**
 * Takes `n` more tokens for a frame `takeToken` let through (a large frame costs
 * more than one). Without enough, the frame is refused (a strike, as for any
 * refused frame) and nothing is taken.
 */
export function takeMoreTokens(conn: Connection, n: number): boolean {
  if (conn.tokens >= n) {
    conn.tokens -= n;
    return true;
  }
  conn.strikes++;
  return false;
}

/**
 * Counts one frame (already allowed by the connection's bucket) in its user's slot
 * of the shared `table`: at most `perSecond` frames per one-second window for the
 * user. A refused frame is a strike of this connection; strikes pile up while the
 * connection keeps being refused in consecutive windows, and past `burst` the
 * connection is closed (4002) like one over its own limit. The connection's own
 * bucket cannot tell: a user may stay under it on every connection and still be
 * over its own limit. A connection that goes a whole window without a refusal
 * starts over, so a client that backs off after 106 is never closed.
 */
export function takeUserToken(conn: Connection, table: Int32Array, now: number, perSecond: number, burst: number): RateDecision {
  if (takeUserFrame(table, conn.userSlot, now, perSecond)) return 'allow';
  const window = windowOf(now);
  conn.userStrikes = conn.userStruckWindow >= window - 1 ? conn.userStrikes + 1 : 1;
  conn.userStruckWindow = window;
  return conn.userStrikes > burst ? 'close' : 'refuse';
}
