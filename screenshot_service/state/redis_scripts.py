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

# One round trip on the hot path (every authenticated request).
# KEYS: hash->id index.  ARGV: key_hash, record key prefix.
KEY_BY_HASH = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
return redis.call('HGETALL', ARGV[2] .. id)
"""

# KEYS: record hash.  True for an existing key, revoked already or not (as SQLite).
REVOKE_KEY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
"""

# KEYS: month counter, reservation.  ARGV: limit, reservation ttl s, counter ttl s.
# A reservation that already exists means this call is a retry of one that
# went through: answer yes without counting twice.
RESERVE_CREDIT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], 'reserved', 'EX', ARGV[2])
return 1
"""

# KEYS: reservation.  reserved -> committed, once.
COMMIT_CREDIT = """
if redis.call('GET', KEYS[1]) ~= 'reserved' then return 0 end
redis.call('SET', KEYS[1], 'committed', 'KEEPTTL')
return 1
"""

# KEYS: reservation, month counter.  reserved -> refunded and one credit back, once.
REFUND_CREDIT = """
if redis.call('GET', KEYS[1]) ~= 'reserved' then return 0 end
redis.call('SET', KEYS[1], 'refunded', 'KEEPTTL')
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used > 0 then redis.call('DECR', KEYS[2]) end
return 1
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
# expires one lease after the newest token, when every member is stale anyway.
CONCURRENCY_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + lease), ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""
