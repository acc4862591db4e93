/**
 * Reconnect delays for the client SDK. Every delay is jittered between a floor and
 * a cap, so a crowd of clients that lost the same server spreads over the window
 * instead of retrying in lockstep. The cap starts low (the first attempt after a
 * loss comes within a few hundred ms) and grows by half for each attempt that fails
 * in a row, up to `maxMs`. Options cannot set the floor or the cap to zero: a client
 * that retried every millisecond would hammer a gateway that is down.
 */

/** How long to wait between reconnect attempts. */
export interface BackoffPolicy {
  /** Shortest delay of any attempt, in ms (at least MIN_FLOOR_MS). */
  minMs: number;
  /** Cap of the first attempt's delay, in ms (at least minMs). */
  baseMs: number;
  /** Largest cap any attempt may reach, in ms (at least MIN_CAP_MS and baseMs). */
  maxMs: number;
}

/** Default policy: first attempt in [100, 300) ms, caps growing ×1.5 per failure up to 10 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { minMs: 100, baseMs: 300, maxMs: 10_000 };

/** Lowest floor options may set: no client retries more than 20 times a second. */
export const MIN_FLOOR_MS = 50;
/** Lowest cap options may set: a gateway that stays down sees each client at most about once a second. */
export const MIN_CAP_MS = 1_000;
/** Growth of the cap per failed attempt in a row. */
export const BACKOFF_FACTOR = 1.5;

/** A policy from user options, with the floor and cap raised to their minimums (non-numbers fall back to the defaults). */
export function backoffPolicy(options: { minMs?: number; baseMs?: number; maxMs?: number } = {}): BackoffPolicy {
  const pick = (v: number | undefined, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const minMs = Math.max(MIN_FLOOR_MS, pick(options.minMs, DEFAULT_BACKOFF.minMs));
  const baseMs = Math.max(minMs, pick(options.baseMs, DEFAULT_BACKOFF.baseMs));
  const maxMs = Math.max(MIN_CAP_MS, baseMs, pick(options.maxMs, DEFAULT_BACKOFF.maxMs));
  return { minMs, baseMs, maxMs };
}

/** The cap of attempt `attempt` (0 for the first after a loss): min(maxMs, baseMs · 1.5^attempt). */
export function backoffCap(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  // 1.5 ** attempt overflows to Infinity past ~1750 attempts; Math.min keeps the cap.
  return Math.min(policy.maxMs, policy.baseMs * BACKOFF_FACTOR ** Math.max(0, attempt));
}

/**
 * Delay before reconnect attempt `attempt`: uniform in [minMs, cap), where cap is
 * backoffCap(attempt). `random` returns [0, 1).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const cap = backoffCap(attempt, policy);
  return policy.minMs + Math.floor(random() * Math.max(0, cap - policy.minMs));
}
