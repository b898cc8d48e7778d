"""Lua sources for the Redis backend (state/redis.py).

Each script runs atomically inside Redis, so a read-check-write never races
with another instance.  Times come from ``redis.call('TIME')``: every instance
shares Redis's clock, never its own.  Redis >= 5 replicates a script by its
effects, so reading TIME in a script that writes is allowed without
``redis.replicate_commands()``.
"""

from __future__ import annotations

# KEYS: record hash, hash->id index, id zset.  ARGV: id, key_hash, score, field, value, ...
ADD_KEY = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

# KEYS: record hash.  True for an existing key, revoked already or not (as SQLite).
REVOKE_KEY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
"""

# KEYS: record hash.  ARGV: a new signing secret, kept only if the key has none yet.
# Returns the key's signing secret (the one stored first); false for no such key.
SIGN_KEY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'signing_secret', ARGV[1])
return redis.call('HGET', KEYS[1], 'signing_secret')
"""

NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: month counter, reservation hash, the key's lease zset (redis_names.py).  ARGV: limit, reservation ttl s,
# counter ttl s, lease ms, lease member.  Returns {taken 0|1, used}.  A reservation that
# already exists means this call is a retry of one that went through: yes, without counting twice.
RESERVE_CREDIT = NOW_MS + """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, used} end
if used >= tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local expires = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[2], 's', 'reserved', 'e', string.format('%.0f', expires))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], string.format('%.0f', expires), ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {1, used}
"""

# KEYS: month counter, the key's lease zset, then one reservation hash per credit.  ARGV: limit,
# count, reservation ttl s, counter ttl s, lease ms, then one lease member per credit.  All of
# them or none: {taken 0|1, used}.  A first reservation that exists already means a retry of a
# call that went through: yes, without counting twice.
RESERVE_CREDITS = NOW_MS + """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if redis.call('EXISTS', KEYS[3]) == 1 then return {1, used} end
local count = tonumber(ARGV[2])
if used + count > tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], count)
redis.call('EXPIRE', KEYS[1], ARGV[4])
local expires = string.format('%.0f', now + tonumber(ARGV[5]))
for i = 1, count do
  redis.call('HSET', KEYS[i + 2], 's', 'reserved', 'e', expires)
  redis.call('EXPIRE', KEYS[i + 2], ARGV[3])
  redis.call('ZADD', KEYS[2], expires, ARGV[i + 5])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {1, used}
"""

# KEYS: reservation hash, lease zset.  ARGV: lease member.  reserved -> committed while the
# lease runs (Redis's clock: a commit that waited in a frozen Redis past it does not land).
# 1 when committed (also when it already was), 0 when it cannot be.
COMMIT_CREDIT = NOW_MS + """
local state = redis.call('HGET', KEYS[1], 's')
if state == 'committed' then return 1 end
if state ~= 'reserved' or tonumber(redis.call('HGET', KEYS[1], 'e')) < now then return 0 end
redis.call('HSET', KEYS[1], 's', 'committed')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: reservation hash, lease zset, month counter.  ARGV: lease member, 1 to overrule a commit.
# reserved (or committed, when overruled) -> refunded and one credit back, once.
REFUND_CREDIT = """
local state = redis.call('HGET', KEYS[1], 's')
if state ~= 'reserved' and not (state == 'committed' and ARGV[2] == '1') then return 0 end
redis.call('HSET', KEYS[1], 's', 'refunded')
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
return 1
"""

# KEYS: one lease zset, then per lease member its reservation hash and month counter.
# ARGV: the lease members, earliest lease end first.  Refunds those whose lease ran out while
# still reserved (their owner died) and drops them from the set; returns how many it refunded.
RECLAIM_CREDITS = NOW_MS + """
local reclaimed = 0
for i, member in ipairs(ARGV) do
  local ends = redis.call('ZSCORE', KEYS[1], member)
  if ends and tonumber(ends) <= now then
    local reservation, counter = KEYS[2 * i], KEYS[2 * i + 1]
    if redis.call('HGET', reservation, 's') == 'reserved' then
      redis.call('HSET', reservation, 's', 'refunded')
      if tonumber(redis.call('GET', counter) or '0') > 0 then redis.call('DECR', counter) end
      reclaimed = reclaimed + 1
    end
    redis.call('ZREM', KEYS[1], member)
  end
end
return reclaimed
"""

# Leaky bucket, the same arithmetic as aiolimiter (LocalRateLimiter): the level
# drains at ARGV[1] per second; a request fits while level + 1 <= burst.
# KEYS: bucket hash {l = level, t = Redis time in microseconds}.  ARGV: rate, burst.
# Returns {allowed 0|1, level after this request as a string (Lua numbers
# returned to Redis are truncated to integers)}.  The key expires when empty.
RATE_HIT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local level = 0
local state = redis.call('HMGET', KEYS[1], 'l', 't')
if state[1] and state[2] then
  local elapsed = math.max(0, now - tonumber(state[2])) / 1000000
  level = math.max(0, tonumber(state[1]) - elapsed * rate)
end
local allowed = 0
if level + 1 <= burst + 1e-9 then
  allowed = 1
  level = level + 1
  redis.call('HSET', KEYS[1], 'l', string.format('%.17g', level), 't', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(level / rate * 1000) + 1)
end
return {allowed, string.format('%.17g', level)}
"""

# KEYS: zset of tokens scored by lease expiry (ms, Redis time).  ARGV: limit, token, lease ms.
# Leases left behind by a crashed instance expire by themselves; the whole set
# expires when its last token's lease (or a timeout's hold) ends, when every member is stale anyway.
CONCURRENCY_ACQUIRE = NOW_MS + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + lease), ARGV[2])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end  -- never cut a held token's
return 1
"""

# KEYS: the zset of CONCURRENCY_ACQUIRE.  ARGV: token, hold ms.  Hold 0: the slot is free now;
# else it stays taken (a timeout's penalty) until its lease ends ``hold`` ms from now.  A token
# already gone (expired) stays gone.
CONCURRENCY_RELEASE = NOW_MS + """
local hold = tonumber(ARGV[2])
if hold <= 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
if redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%.0f', now + hold), ARGV[1]) == 1 then
  if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
end
return 1
"""
