/**
 * Shared presence in Redis (standalone or Cluster): the memory presence table
 * (memory-presence.ts, the reference) translated into Lua scripts, so instances
 * sharing one Redis see each other's users. It honours the whole contract of
 * presence.ts; each call is ONE script, hence atomic across instances.
 *
 * Keys. Every key of one prefix carries the same hash tag, `{presence}`:
 *   P{presence}:leases      hash  owner → ttl (ms) of its latest refresh, or the default
 *                                 lease; present exactly while the owner's lease is live
 *   P{presence}:expiry      zset  owner → expiresAt (ms, caller's clock): finds lapsed
 *                                 owners without scanning everything
 *   P{presence}:gone        hash  `session\0user` → 1: departures by lapse not yet
 *                                 returned by expire()
 *   P{presence}:s:<session> hash  user → connections summed over the live owners
 *   P{presence}:o:<owner>   hash  `session\0user` → connections the owner holds
 * (P is the prefix). Session ids hold no NUL (protocol/validate.ts allows
 * [A-Za-z0-9_.:@-]), so `session\0user` splits at its first NUL whatever the user id.
 * Empty hashes vanish on their own, so the keyspace holds live state only, plus
 * leases of owners with no connections until they lapse.
 *
 * Trade-off of the single hash tag: all presence of a prefix lives on ONE cluster
 * slot, hence on one master. That is what lets every call be one atomic script even
 * on Redis Cluster (a join touches the session, the owner and the leases at once;
 * a sweep touches many sessions). Presence traffic is light (joins, leaves, lease
 * refreshes, lists on subscribe); the hot path (events, history, pub/sub) is spread
 * over the masters by session elsewhere (the Redis broker).
 *
 * Like the memory table, every script first sweeps: owners whose lease lapsed by
 * the caller's clock (`now`, passed as an argument, so an injected clock controls
 * expiry exactly and instances need close clocks only) lose their connections,
 * whose departures wait in `gone` for expire(). The table then holds live owners
 * only, and join/leave judge first/last connection on the summed counts.
 *
 * Bounded work: a sweep, dropOwner and expire touch every connection of the owners
 * they remove (and expire every unreported departure) in one script, which blocks
 * Redis for that long. Each connection is removed once, so the work is amortised;
 * an owner of a very large number of connections would call for removing it in
 * batches over several scripts. Fine for now.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { PresenceEntry } from '../../protocol/frames.js';
import { LeaseLost, type Presence, type PresenceDeparture } from './presence.js';

/** Settings of the Redis presence table. */
export interface RedisPresenceOptions {
  /** Command connection (standalone or cluster), owned by the caller: close() does not quit it. */
  redis: Redis | Cluster;
  /** Prefix of every key (e.g. "shardcast:"); tests use a unique one each. */
  prefix: string;
  /** Clock in ms (Date.now by default); leases are judged by the caller's clock, passed to the scripts as an argument. */
  now?: () => number;
  /** Lease of an owner that joins before its first refresh (30000 by default). */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 30_000;

function checkTtl(ttlMs: number, what: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive integer of milliseconds, got ${ttlMs}`);
  }
}

// Shared by every script. KEYS[1..3] = leases, expiry, gone; ARGV[1] = key base
// (`P{presence}:`), ARGV[2] = now (ms). Keys built here from the base (sessions and
// owners met while sweeping) share the hash tag, hence the slot, of KEYS.
const PRELUDE = `
local SEP = string.char(0)
local leasesKey, expiryKey, goneKey = KEYS[1], KEYS[2], KEYS[3]
local base, now = ARGV[1], tonumber(ARGV[2])

local function split(field)
  local i = string.find(field, SEP, 1, true)
  return string.sub(field, 1, i - 1), string.sub(field, i + 1)
end

-- Removes every connection of owner; appends (session, user) of each user left
-- with none to out.
local function removeOwner(owner, out)
  local ownerKey = base .. 'o:' .. owner
  local held = redis.call('HGETALL', ownerKey)
  if #held == 0 then return end
  redis.call('DEL', ownerKey)
  for i = 1, #held, 2 do
    local session, user = split(held[i])
    local sessionKey = base .. 's:' .. session
    if redis.call('HINCRBY', sessionKey, user, -tonumber(held[i + 1])) <= 0 then
      redis.call('HDEL', sessionKey, user)
      out[#out + 1] = session
      out[#out + 1] = user
    end
  end
end

-- Moves what lapsed owners held out of the table; their departures wait in gone.
local function sweep()
  local lapsed = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', ARGV[2])
  for _, owner in ipairs(lapsed) do
    redis.call('ZREM', expiryKey, owner)
    redis.call('HDEL', leasesKey, owner)
    local gone = {}
    removeOwner(owner, gone)
    for i = 1, #gone, 2 do
      redis.call('HSET', goneKey, gone[i] .. SEP .. gone[i + 1], 1)
    end
  end
end

local function renew(owner, ttl)
  redis.call('HSET', leasesKey, owner, ttl)
  redis.call('ZADD', expiryKey, string.format('%.17g', now + tonumber(ttl)), owner)
end

sweep()
`;

// KEYS[4] = session hash, KEYS[5] = owner hash; ARGV[3..7] = session, user, owner,
// default lease, '1' when the lease must be live already (else -1, nothing counted).
const JOIN = `
local session, user, owner = ARGV[3], ARGV[4], ARGV[5]
local lease = redis.call('HGET', leasesKey, owner)
if ARGV[7] == '1' and not lease then return -1 end
renew(owner, lease or ARGV[6])
redis.call('HINCRBY', KEYS[5], session .. SEP .. user, 1)
if redis.call('HINCRBY', KEYS[4], user, 1) > 1 then return 0 end
-- Back before her departure was announced: to the listeners she never left.
if redis.call('HDEL', goneKey, session .. SEP .. user) == 1 then return 0 end
return 1
`;

// KEYS[4] = session hash, KEYS[5] = owner hash; ARGV[3..5] = session, user, owner.
const LEAVE = `
local session, user = ARGV[3], ARGV[4]
local field = session .. SEP .. user
local count = tonumber(redis.call('HGET', KEYS[5], field))
if not count then return 0 end
if count > 1 then
  redis.call('HINCRBY', KEYS[5], field, -1)
else
  redis.call('HDEL', KEYS[5], field)
end
if redis.call('HINCRBY', KEYS[4], user, -1) > 0 then return 0 end
redis.call('HDEL', KEYS[4], user)
return 1
`;

// ARGV[3..4] = owner, ttl.
const REFRESH = `
local wasLive = redis.call('ZSCORE', expiryKey, ARGV[3])
renew(ARGV[3], ARGV[4])
if wasLive then return 1 end
return 0
`;

// KEYS[4] = owner hash; ARGV[3] = owner. Returns session, user, session, user, ...
const DROP_OWNER = `
redis.call('ZREM', expiryKey, ARGV[3])
redis.call('HDEL', leasesKey, ARGV[3])
local out = {}
removeOwner(ARGV[3], out)
return out
`;

// Returns session, user, session, user, ...
const EXPIRE = `
local gone = redis.call('HGETALL', goneKey)
redis.call('DEL', goneKey)
local out = {}
for i = 1, #gone, 2 do
  local session, user = split(gone[i])
  out[#out + 1] = session
  out[#out + 1] = user
end
return out
`;

// KEYS[4] = session hash. Returns user, count, user, count, ...
const LIST = `
return redis.call('HGETALL', KEYS[4])
`;

interface Script {
  name: string;
  source: string;
  sha: string;
}

function script(name: string, body: string): Script {
  const source = PRELUDE + body;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = {
  join: script('join', JOIN),
  leave: script('leave', LEAVE),
  refresh: script('refresh', REFRESH),
  dropOwner: script('dropOwner', DROP_OWNER),
  expire: script('expire', EXPIRE),
  list: script('list', LIST),
};

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** A 0/1 script reply as a boolean. */
function flag(reply: unknown, what: string): boolean {
  if (reply === 0 || reply === 1) return reply === 1;
  throw new Error(`redis presence ${what}: expected 0 or 1, got ${describe(reply)}`);
}

/** A script reply that must be an array of strings of even length (pairs). */
function pairs(reply: unknown, what: string): string[] {
  if (!Array.isArray(reply) || reply.length % 2 !== 0 || !reply.every((x): x is string => typeof x === 'string')) {
    throw new Error(`redis presence ${what}: expected an even array of strings, got ${describe(reply)}`);
  }
  return reply;
}

function departures(reply: unknown, what: string): PresenceDeparture[] {
  const flat = pairs(reply, what);
  const out: PresenceDeparture[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ session: flat[i], user: flat[i + 1] });
  return out;
}

function entries(reply: unknown): PresenceEntry[] {
  const flat = pairs(reply, 'list');
  const out: PresenceEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const n = Number(flat[i + 1]);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new Error(`redis presence list: user ${JSON.stringify(flat[i])} has count ${JSON.stringify(flat[i + 1])}`);
    }
    out.push({ u: flat[i], n });
  }
  // Hash order is Redis's; callers get users in a stable order (by id).
  return out.sort((a, b) => (a.u < b.u ? -1 : a.u > b.u ? 1 : 0));
}

function describe(reply: unknown): string {
  const text = JSON.stringify(reply) ?? String(reply);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Creates the presence table shared through Redis by every instance on `prefix`. */
export function createRedisPresence(opts: RedisPresenceOptions): Presence {
  const { redis, prefix } = opts;
  const clock = opts.now ?? Date.now;
  const defaultLeaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  checkTtl(defaultLeaseMs, 'redis presence leaseMs');
  if (prefix.includes('{') || prefix.includes('}')) {
    // A brace in the prefix would move (or, with "{}", defeat) the hash tag.
    throw new Error(`redis presence prefix ${JSON.stringify(prefix)} must not contain "{" or "}"`);
  }
  const base = `${prefix}{presence}:`;
  const leasesKey = `${base}leases`;
  const expiryKey = `${base}expiry`;
  const goneKey = `${base}gone`;
  const sessionKey = (session: string) => `${base}s:${session}`;
  const ownerKey = (owner: string) => `${base}o:${owner}`;

  function now(): string {
    const t = clock();
    if (!Number.isFinite(t)) throw new Error(`redis presence clock returned ${t}`);
    return String(t);
  }

  /** Runs one script by its hash, loading it (EVAL) where the node does not know it yet. */
  async function run(s: Script, keys: string[], args: string[]): Promise<unknown> {
    const all = [leasesKey, expiryKey, goneKey, ...keys];
    const argv = [base, now(), ...args];
    try {
      return await redis.evalsha(s.sha, all.length, ...all, ...argv);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return await redis.eval(s.source, all.length, ...all, ...argv);
    }
  }

  const presence = {
    async join(session: string, user: string, owner: string, established = false) {
      const reply = await run(SCRIPTS.join, [sessionKey(session), ownerKey(owner)], [session, user, owner, String(defaultLeaseMs), established ? '1' : '0']);
      if (reply === -1) throw new LeaseLost(`presence lease of ${owner} is gone: what it held was lost`);
      return flag(reply, 'join');
    },
    async leave(session: string, user: string, owner: string) {
      return flag(await run(SCRIPTS.leave, [sessionKey(session), ownerKey(owner)], [session, user, owner]), 'leave');
    },
    async refresh(owner: string, ttlMs: number) {
      checkTtl(ttlMs, 'presence lease ttlMs');
      return flag(await run(SCRIPTS.refresh, [], [owner, String(ttlMs)]), 'refresh');
    },
    async dropOwner(owner: string) {
      return departures(await run(SCRIPTS.dropOwner, [ownerKey(owner)], [owner]), 'dropOwner');
    },
    async expire() {
      return departures(await run(SCRIPTS.expire, [], []), 'expire');
    },
    async list(session: string) {
      return entries(await run(SCRIPTS.list, [sessionKey(session)], []));
    },
    async close() {
      // The connection is the caller's, and the table is shared with other instances.
    },
  } satisfies Presence;
  return presence;
}
