/**
 * Reconnect delays for the client SDK. Full jitter (a uniform delay between zero and
 * the exponential cap) spreads a crowd of clients that lost the same server across
 * the whole window instead of having them retry in lockstep.
 */

/** How long to wait between reconnect attempts. */
export interface BackoffPolicy {
  /** Cap of the first attempt's delay, in ms. */
  baseMs: number;
  /** Largest cap any attempt may reach, in ms. */
  maxMs: number;
}

/** Default reconnect policy: caps 500 ms, 1 s, 2 s, … up to 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before reconnect attempt `attempt` (0 for the first after a loss):
 * uniform in [0, min(maxMs, baseMs * 2^attempt)). `random` returns [0, 1).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  // 2 ** attempt overflows to Infinity past ~1000 attempts; Math.min keeps the cap.
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * cap);
}
