/**
 * The command limiter in Redis: one hash per bucket (`<prefix>{cl:<key>}`: tokens
 * and when they were counted), updated by one script on Redis's own clock (`TIME`),
 * so every instance counts against the same bucket and the same time. A bucket
 * expires once it would be full again. Contract: command-limiter.ts.
 */
import type { Cluster, Redis } from 'ioredis';
import type { CommandLimit } from '../config/schema.js';
import type { CommandLimiter, LimitVerdict } from './command-limiter.js';

const TAKE_SCRIPT = `
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local perMinute = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if b[1] then
  tokens = math.min(burst, tonumber(b[1]) + (t - tonumber(b[2])) * perMinute / 60000)
end
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', t)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 60000 / perMinute) + 1000)
if ok == 1 then return {1, 0} end
return {0, math.max(1, math.ceil((1 - tokens) * 60000 / perMinute))}
`;

interface Scripts {
  shardcastTakeToken(key: string, perMinute: number, burst: number): Promise<[number, number]>;
}

/** The Redis limiter on the engine's command connection (not closed here). */
export function createRedisCommandLimiter(redis: Redis | Cluster, prefix: string): CommandLimiter {
  redis.defineCommand('shardcastTakeToken', { numberOfKeys: 1, lua: TAKE_SCRIPT });
  const scripts = redis as unknown as Scripts;
  return {
    async take(key: string, limit: CommandLimit): Promise<LimitVerdict> {
      const reply = await scripts.shardcastTakeToken(`${prefix}{cl:${key}}`, limit.perMinute, limit.burst);
      if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') throw new Error('redis command limiter: unexpected script reply');
      return reply[0] === 1 ? { ok: true } : { ok: false, retryAfterMs: reply[1] };
    },
    async close() {},
  };
}
