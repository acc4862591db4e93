/**
 * The Lua scripts of the Redis broker: each runs atomically on the Redis node that
 * holds the session, so dedupe, seq, history, snapshot and publish of one event
 * happen together or not at all. Every key of a session shares one hash tag, so
 * a session lives on one Cluster slot and each script touches one slot only.
 *
 * Key layout (B = `<prefix>{<session>}`; docs/redis.md has the whole picture):
 *   B:m           hash   ep (epoch), seq (last seq)
 *   B:h           list   the last historySize envelopes, oldest first
 *   B:i           zset   event id → seq (the last max(1000, historySize) ids)
 *   B:k           hash   shared snapshot key → entry
 *   B:us          set    users with snapshot keys of their own
 *   B:u:<user>    hash   that user's snapshot key → entry
 *   B:t           zset   scheduled events: seq → release time `at` (ms), the last 64
 *   B:c           channel the session's envelopes are published on
 * An entry is 8 bytes of seq (float64) then msgpack [type, data, ts]; an envelope
 * is described in stream-envelope.ts.
 *
 * Epoch: a missing B:m means the session is new or its data was lost (expired, or
 * Redis restarted empty or evicted it): the script starts it under the candidate
 * epoch the caller passed, after deleting whatever partial state survived, so no
 * seq of the new epoch ever meets history of an old one.
 *
 * Expiry: every key of a session has the session TTL. Writes set it on the keys
 * they write; every script also renews all of them once their TTL has run down by
 * a tenth (at most a minute), so an idle session is gone between 0.9 and 1 TTL
 * after its last activity, and an active one never loses a part of itself.
 *
 * Common arguments: KEYS[1] = B:m, ARGV[1] = B, ARGV[2] = ttl ms, ARGV[3] =
 * candidate epoch.
 */

const PRELUDE = `
local m = KEYS[1]
local base = ARGV[1]
local ttl = tonumber(ARGV[2])

local function renewAll()
  redis.call('PEXPIRE', m, ttl)
  redis.call('PEXPIRE', base .. ':h', ttl)
  redis.call('PEXPIRE', base .. ':i', ttl)
  redis.call('PEXPIRE', base .. ':k', ttl)
  redis.call('PEXPIRE', base .. ':us', ttl)
  redis.call('PEXPIRE', base .. ':t', ttl)
  for _, user in ipairs(redis.call('SMEMBERS', base .. ':us')) do
    redis.call('PEXPIRE', base .. ':u:' .. user, ttl)
  end
end

local function keepAlive()
  if redis.call('PTTL', m) < ttl - math.min(ttl / 10, 60000) then renewAll() end
end

local function forget()
  for _, user in ipairs(redis.call('SMEMBERS', base .. ':us')) do
    redis.call('DEL', base .. ':u:' .. user)
  end
  redis.call('DEL', m, base .. ':h', base .. ':i', base .. ':k', base .. ':us', base .. ':t')
end

-- The session's epoch and last seq, starting it under the candidate epoch when unknown.
local function open()
  local meta = redis.call('HMGET', m, 'ep', 'seq')
  if meta[1] then
    keepAlive()
    return meta[1], tonumber(meta[2])
  end
  forget()
  redis.call('HSET', m, 'ep', ARGV[3], 'seq', 0)
  redis.call('PEXPIRE', m, ttl)
  return ARGV[3], 0
end
`;

/**
 * Sequences one event. ARGV[4] event id ('' none), [5] frame head, [6] frame
 * tail, [7] envelope metadata, [8] history size, [9] ids kept, [10] snapshot key
 * ('' none), [11] snapshot payload, [12] max snapshot keys, [13] PUBLISH or
 * SPUBLISH, [14] 'all' or 'to', [15] release time `at` ('' none), [16…]
 * recipients (with 'to' and a snapshot key).
 * Returns {seq, epoch, duplicate 0/1}, or {-1, 'session' | 'user', user} when a
 * new snapshot key would pass the bound (nothing stored).
 */
export const PUBLISH_SCRIPT = `${PRELUDE}
local function packSeq(n)
  if n < 128 then return string.char(n) end
  if n < 256 then return '\\204' .. string.char(n) end
  if n < 65536 then return '\\205' .. struct.pack('>I2', n) end
  if n < 4294967296 then return '\\206' .. struct.pack('>I4', n) end
  return '\\203' .. struct.pack('>d', n)
end

local ep, seq = open()
local id = ARGV[4]
if id ~= '' then
  local seen = redis.call('ZSCORE', base .. ':i', id)
  if seen then return {tonumber(seen), ep, 1} end
end
local skey = ARGV[10]
local shared = ARGV[14] == 'all'
if skey ~= '' then
  local max = tonumber(ARGV[12])
  if shared then
    local k = base .. ':k'
    if redis.call('HEXISTS', k, skey) == 0 and redis.call('HLEN', k) >= max then return {-1, 'session', ''} end
  else
    for i = 16, #ARGV do
      local u = base .. ':u:' .. ARGV[i]
      if redis.call('HEXISTS', u, skey) == 0 and redis.call('HLEN', u) >= max then return {-1, 'user', ARGV[i]} end
    end
  end
end

seq = seq + 1
redis.call('HSET', m, 'seq', seq)
-- The ev frame, byte-identical to encodeServerFrame (protocol/event-template.ts).
local frame = ARGV[5] .. packSeq(seq) .. '\\162ep' .. string.char(160 + #ep) .. ep .. ARGV[6]
local meta = ARGV[7]
local envelope = '\\1' .. struct.pack('>d', seq) .. string.char(#ep) .. ep .. struct.pack('>I4', #meta) .. meta .. frame

local size = tonumber(ARGV[8])
if size > 0 then
  local h = base .. ':h'
  redis.call('RPUSH', h, envelope)
  redis.call('LTRIM', h, -size, -1)
  redis.call('PEXPIRE', h, ttl)
end
if id ~= '' then
  local i = base .. ':i'
  redis.call('ZADD', i, seq, id)
  local over = redis.call('ZCARD', i) - tonumber(ARGV[9])
  if over > 0 then redis.call('ZREMRANGEBYRANK', i, 0, over - 1) end
  redis.call('PEXPIRE', i, ttl)
end
if skey ~= '' then
  local entry = struct.pack('>d', seq) .. ARGV[11]
  if shared then
    redis.call('HSET', base .. ':k', skey, entry)
    redis.call('PEXPIRE', base .. ':k', ttl)
  else
    local us = base .. ':us'
    for i = 16, #ARGV do
      local u = base .. ':u:' .. ARGV[i]
      redis.call('HSET', u, skey, entry)
      redis.call('PEXPIRE', u, ttl)
      redis.call('SADD', us, ARGV[i])
    end
    redis.call('PEXPIRE', us, ttl)
  end
end
if ARGV[15] ~= '' then
  local t = base .. ':t'
  redis.call('ZADD', t, tonumber(ARGV[15]), seq)
  local over = redis.call('ZCARD', t) - 64
  if over > 0 then redis.call('ZREMRANGEBYRANK', t, 0, over - 1) end
  redis.call('PEXPIRE', t, ttl)
end
redis.call(ARGV[13], base .. ':c', envelope)
return {seq, ep, 0}
`;

/**
 * Reads history after a position. ARGV[4] since epoch ('' for none), [5] since
 * seq, [6] '1' to include the snapshot of user [7] when not complete.
 * Returns {epoch, head, complete 0/1, envelopes, flat snapshot [key, entry, …]}
 * (shared keys first, the user's own after them: later ones win).
 */
export const HISTORY_SCRIPT = `${PRELUDE}
local ep, head = open()
local complete = 0
local entries = {}
if ARGV[4] == ep then
  local since = tonumber(ARGV[5])
  if since <= head then
    local h = base .. ':h'
    local oldest = head + 1
    local first = redis.call('LINDEX', h, 0)
    if first then oldest = struct.unpack('>d', string.sub(first, 2, 9)) end
    if since >= oldest - 1 then
      complete = 1
      if head > since then entries = redis.call('LRANGE', h, since - head, -1) end
    end
  end
end
local snapshot = {}
if complete == 0 and ARGV[6] == '1' then
  snapshot = redis.call('HGETALL', base .. ':k')
  for _, v in ipairs(redis.call('HGETALL', base .. ':u:' .. ARGV[7])) do snapshot[#snapshot + 1] = v end
end
return {ep, head, complete, entries, snapshot}
`;

/**
 * The session's position, creating it when unknown. ARGV[4] now (ms). Returns
 * {epoch, seq, heldFrom}: the lowest seq of a scheduled event released after now
 * (0 when none); released ones are dropped from B:t.
 */
export const POSITION_SCRIPT = `${PRELUDE}
local ep, seq = open()
local t = base .. ':t'
local heldFrom = 0
if redis.call('EXISTS', t) == 1 then
  redis.call('ZREMRANGEBYSCORE', t, '-inf', ARGV[4])
  for _, s in ipairs(redis.call('ZRANGE', t, 0, -1)) do
    local n = tonumber(s)
    if heldFrom == 0 or n < heldFrom then heldFrom = n end
  end
end
return {ep, seq, heldFrom}
`;

/** Renews the TTL of a session that exists (an instance streams it); creates nothing. Returns 1 when it exists. */
export const TOUCH_SCRIPT = `${PRELUDE}
if redis.call('EXISTS', m) == 0 then return 0 end
renewAll()
return 1
`;

/** Deletes every key of the session (test hooks: a backend that lost the session). */
export const FORGET_SCRIPT = `${PRELUDE}
forget()
return 1
`;
