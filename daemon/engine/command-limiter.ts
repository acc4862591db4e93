/**
 * Per-user limits on participants' commands: one token bucket per (namespace,
 * command type or `*`, user), `burst` tokens, refilled at `perMinute`. The memory
 * limiter counts within one instance (all its shards: the primary owns it); the
 * Redis limiter (redis-command-limiter.ts) counts across every instance on a Redis.
 *
 * Contract: `take` removes one token and resolves `{ ok: true }`, or removes
 * nothing and resolves `{ ok: false, retryAfterMs }` with the time until a token is
 * back (≥ 1). Calls for one key take effect in call order. A bucket left alone
 * refills to `burst`; a full bucket holds no state (memory stays bounded by the
 * users active within one refill).
 */
import type { CommandLimit } from '../config/schema.js';
import { TokenBuckets } from './token-buckets.js';

/** The verdict on one command. */
export type LimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/** Token buckets by key; see the contract above. */
export interface CommandLimiter {
  take(key: string, limit: CommandLimit): Promise<LimitVerdict>;
  close(): Promise<void>;
}

/** How long a bucket at `tokens` (< 1) waits for its next token. */
export function msUntilToken(tokens: number, limit: CommandLimit): number {
  return Math.max(1, Math.ceil(((1 - tokens) * 60_000) / limit.perMinute));
}

const SWEEP_MS = 60_000;

/** In-process buckets (the standalone engine). */
export function createMemoryCommandLimiter(now: () => number = Date.now): CommandLimiter {
  const buckets = new TokenBuckets(SWEEP_MS);
  return {
    async take(key, limit) {
      const had = buckets.take(key, 1, limit.burst, limit.perMinute / 60_000, now());
      return had >= 1 ? { ok: true } : { ok: false, retryAfterMs: msUntilToken(had, limit) };
    },
    async close() {
      buckets.clear();
    },
  };
}
