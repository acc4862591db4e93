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

interface Bucket {
  tokens: number;
  at: number;
}

const SWEEP_MS = 60_000;

/** In-process buckets (the standalone engine). */
export function createMemoryCommandLimiter(now: () => number = Date.now): CommandLimiter {
  const buckets = new Map<string, Bucket>();
  const refill = (b: Bucket, limit: CommandLimit, t: number) => Math.min(limit.burst, b.tokens + ((t - b.at) * limit.perMinute) / 60_000);
  const limits = new Map<string, CommandLimit>();
  // Buckets that refilled to full carry no information: dropped, so memory follows
  // the users active within a refill, not every user ever seen.
  const sweeper = setInterval(() => {
    const t = now();
    for (const [key, b] of buckets) {
      const limit = limits.get(key);
      if (limit === undefined || refill(b, limit, t) >= limit.burst) {
        buckets.delete(key);
        limits.delete(key);
      }
    }
  }, SWEEP_MS);
  sweeper.unref();
  return {
    async take(key, limit) {
      const t = now();
      const b = buckets.get(key) ?? { tokens: limit.burst, at: t };
      const tokens = refill(b, limit, t);
      if (tokens < 1) {
        buckets.set(key, { tokens, at: t });
        limits.set(key, limit);
        return { ok: false, retryAfterMs: msUntilToken(tokens, limit) };
      }
      buckets.set(key, { tokens: tokens - 1, at: t });
      limits.set(key, limit);
      return { ok: true };
    },
    async close() {
      clearInterval(sweeper);
      buckets.clear();
    },
  };
}
