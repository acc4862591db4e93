/**
 * Reconnect delays for the client SDK. Every delay is jittered between a floor and
 * a cap, so a crowd of clients that lost the same server spreads over the window
 * instead of retrying in lockstep. The cap follows how long the client has been
 * failing: `baseMs` at first, then half the time since the connection was lost, up
 * to `maxMs`. So a client is back within about max(baseMs, outage / 2) of the
 * network's (or gateway's) return — a few hundred ms after a one-second outage —
 * while a gateway that stays down sees each client's attempts thin out
 * (logarithmically many over an outage, then one per maxMs / 2 on average). Options
 * cannot set the floor or the cap to zero: a client that retried every millisecond
 * would hammer a gateway that is down.
 */

/** How long to wait between reconnect attempts. */
export interface BackoffPolicy {
  /** Shortest delay of any attempt, in ms (at least MIN_FLOOR_MS). */
  minMs: number;
  /** Cap of the delays while the client has been failing for less than 2 · baseMs, in ms (at least minMs). */
  baseMs: number;
  /** Largest cap any attempt may reach, in ms (at least MIN_CAP_MS and baseMs). */
  maxMs: number;
}

/** Default policy: delays in [100, 300) ms for the first 600 ms of an outage, then capped at half its age, at most 10 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { minMs: 100, baseMs: 300, maxMs: 10_000 };

/** Lowest floor options may set: no client retries more than 20 times a second. */
export const MIN_FLOOR_MS = 50;
/** Lowest cap options may set: a gateway that stays down sees each client at most about once a second. */
export const MIN_CAP_MS = 1_000;
/** The cap as a share of the time the client has been failing. */
export const BACKOFF_GROWTH = 0.5;

/** A policy from user options, with the floor and cap raised to their minimums (non-numbers fall back to the defaults). */
export function backoffPolicy(options: { minMs?: number; baseMs?: number; maxMs?: number } = {}): BackoffPolicy {
  const pick = (v: number | undefined, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const minMs = Math.max(MIN_FLOOR_MS, pick(options.minMs, DEFAULT_BACKOFF.minMs));
  const baseMs = Math.max(minMs, pick(options.baseMs, DEFAULT_BACKOFF.baseMs));
  const maxMs = Math.max(MIN_CAP_MS, baseMs, pick(options.maxMs, DEFAULT_BACKOFF.maxMs));
  return { minMs, baseMs, maxMs };
}

/** The cap of the next delay after failing for `failingForMs`: min(maxMs, max(baseMs, failingForMs / 2)). */
export function backoffCap(failingForMs: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  return Math.min(policy.maxMs, Math.max(policy.baseMs, BACKOFF_GROWTH * Math.max(0, failingForMs)));
}

/**
 * Delay before the next reconnect attempt of a client that has been failing for
 * `failingForMs` (0 right after the loss): uniform in [minMs, cap), where cap is
 * backoffCap(failingForMs). `random` returns [0, 1).
 */
export function backoffDelay(failingForMs: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const cap = backoffCap(failingForMs, policy);
  return policy.minMs + Math.floor(random() * Math.max(0, cap - policy.minMs));
}
