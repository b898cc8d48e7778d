"""Lua for the Redis job store (redis_jobs.py): each queue step is one atomic script.

Lease times are Redis's own clock (``TIME``, milliseconds), so instances with
skewed clocks never steal each other's live leases.  Ownership is the ``owner``
field of the job hash: a worker that lost its lease can no longer finish, ack
or renew the job.
"""

from __future__ import annotations

# KEYS: job hash, queue list, active set, idempotency key.
# ARGV: max_active, ttl s, has idempotency key (0|1), job id, job key prefix, field, value, ...
# Returns {"existing", id} | {"full", active count} | {"created", id}.
CREATE = """
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing and redis.call('EXISTS', ARGV[5] .. existing) == 1 then
    return {'existing', existing}
  end
end
local active = redis.call('SCARD', KEYS[3])
if active >= tonumber(ARGV[1]) then
  -- Only when full, so the common path stays O(1): a member whose record expired
  -- (queued longer than the retention) must not block the key for ever.
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', ARGV[5] .. id) == 0 then redis.call('SREM', KEYS[3], id) end
  end
  active = redis.call('SCARD', KEYS[3])
  if active >= tonumber(ARGV[1]) then return {'full', tostring(active)} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[2]) end
return {'created', ARGV[4]}
"""

# KEYS: queue list, lease zset, claim token key.  ARGV: job key prefix, owner, lease ms,
# now (ISO text), token ('' for none).  A repeated token (the answer to its first claim
# was lost) returns the job that claim took, if it is still the owner's, and takes nothing.
# A run-out lease first (its worker died), else the oldest queued id.  Ids whose
# record has expired are dropped on the way.  A run is counted unless the claimant
# already held the lease (it is alive: its lease ran out while Redis was away, or the
# answer to its claim was lost).  Returns the job hash flattened, or nil.
CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[5] ~= '' then
  local taken = redis.call('GET', KEYS[3])
  if taken and redis.call('HGET', ARGV[1] .. taken, 'owner') == ARGV[2] then
    redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[3])), taken)
    return redis.call('HGETALL', ARGV[1] .. taken)
  end
end
local id = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)[1]
local key
while true do
  if not id then
    id = redis.call('RPOP', KEYS[1])
    if not id then return false end
  end
  key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then break end
  redis.call('ZREM', KEYS[2], id)
  id = nil
end
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[3])), id)
local previous = redis.call('HGET', key, 'owner')
redis.call('HSET', key, 'owner', ARGV[2])
local status = redis.call('HGET', key, 'status')
if (status == 'queued' or status == 'running') and previous ~= ARGV[2] then
  redis.call('HSET', key, 'status', 'running', 'started_at', ARGV[4])
  redis.call('HINCRBY', key, 'runs', 1)
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], id, 'PX', ARGV[3]) end
return redis.call('HGETALL', key)
"""

# KEYS: lease zset, job hash.  ARGV: owner, lease ms, job id.
RENEW = """
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[3])
return 1
"""

# KEYS: job hash, active set, idempotency key.  ARGV: owner, ttl s, job id, field, value, ...
FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'options', '', unpack(ARGV, 4))
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
return 1
"""

# KEYS: job hash.  ARGV: owner, field, value, ...
UPDATE_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# KEYS: lease zset, job hash.  ARGV: owner, job id.
ACK = """
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], 'owner')
return 1
"""

# KEYS: lease zset, job hash, queue list.  ARGV: owner, job id.
# Back to the pop end of the queue (first in line); a running job is queued again
# and this run is not counted (a shutdown is not the job's fault).
RELEASE = """
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], 'owner')
if redis.call('HGET', KEYS[2], 'status') == 'running' then
  redis.call('HSET', KEYS[2], 'status', 'queued', 'started_at', '')
  if tonumber(redis.call('HGET', KEYS[2], 'runs') or '0') > 0 then redis.call('HINCRBY', KEYS[2], 'runs', -1) end
end
redis.call('RPUSH', KEYS[3], ARGV[2])
return 1
"""

# KEYS: job hash, active set.  ARGV: key id, finished_at, job id.
# Only a queued job is canceled; it stays in the queue so a worker settles its credit.
CANCEL = """
if redis.call('HGET', KEYS[1], 'key_id') ~= ARGV[1] then return false end
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'finished_at', ARGV[2], 'options', '')
  redis.call('SREM', KEYS[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
"""
