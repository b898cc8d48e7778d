"""Lua for the Redis job store (redis_jobs.py): each queue step is one atomic script.

Lease times are Redis's own clock (``TIME``, milliseconds), so instances with
skewed clocks never steal each other's live leases.  Ownership is the ``owner``
field of the job hash: a worker that lost its lease can no longer finish, ack
or renew the job.
"""

from __future__ import annotations

from ..state.redis_scripts import NOW_MS as _NOW_MS

# KEYS: job hash, queue list, active set, idempotency key, the job hash of the id the caller
# believes the idempotency key holds (the new job's own hash when it believes none).
# ARGV: max_active, ttl s, has idempotency key (0|1), job id, that believed id ('' for none),
# field, value, ...  Returns {"existing", id} | {"moved", id} (the key holds another id than
# believed: call again believing it) | {"full", active count} | {"created", id}.
CREATE = """
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing and existing ~= ARGV[5] then return {'moved', existing} end
  if existing and redis.call('EXISTS', KEYS[5]) == 1 then return {'existing', existing} end
end
local active = redis.call('SCARD', KEYS[3])
if active >= tonumber(ARGV[1]) then return {'full', tostring(active)} end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[2]) end
return {'created', ARGV[4]}
"""

# Only when a key is full, so the common path stays O(1): a member whose record expired
# (queued longer than the retention) must not block the key for ever.
# KEYS: active set, then the job hash of each id in ARGV.  ARGV: the set's ids.
# Returns how many ids remain.
PRUNE_ACTIVE = """
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], id) end
end
return redis.call('SCARD', KEYS[1])
"""

# A claim is two steps, because a script may only touch the keys it is given and which
# job it takes is known only from the queue.  PEEK names a candidate; CLAIM takes it
# if it is still one (else "again": the caller peeks anew).
# KEYS: queue list, lease zset, claim token key.  ARGV: token ('' for none).
# Returns {source, id} or nil: "token", the job an earlier claim with this token took (its
# answer was lost); "lease", a run-out lease (its worker died); "queue", the oldest queued id.
PEEK = _NOW_MS + """
if ARGV[1] ~= '' then
  local taken = redis.call('GET', KEYS[3])
  if taken then return {'token', taken} end
end
local id = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)[1]
if id then return {'lease', id} end
id = redis.call('LINDEX', KEYS[1], -1)
if id then return {'queue', id} end
return false
"""

# KEYS: queue list, lease zset, claim token key, the candidate's job hash.  ARGV: owner,
# lease ms, now (ISO text), token ('' for none), candidate id, its source (PEEK).
# A repeated token returns the job its first claim took, if it is still the owner's, and
# takes nothing.  A candidate whose record has expired is dropped on the way.  A run is
# counted unless the claimant already held the lease (it is alive: its lease ran out while
# Redis was away, or the answer to its claim was lost).  Returns the job hash flattened, or
# {"again"}.
CLAIM = _NOW_MS + """
local id, source = ARGV[5], ARGV[6]
if source == 'token' then
  if redis.call('GET', KEYS[3]) ~= id or redis.call('HGET', KEYS[4], 'owner') ~= ARGV[1] then
    return {'again'}
  end
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])), id)
  return redis.call('HGETALL', KEYS[4])
elseif source == 'lease' then
  local ends = redis.call('ZSCORE', KEYS[2], id)
  if not ends or tonumber(ends) > now then return {'again'} end
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('ZREM', KEYS[2], id)
    return {'again'}
  end
else
  if redis.call('LINDEX', KEYS[1], -1) ~= id then return {'again'} end
  redis.call('RPOP', KEYS[1])
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('ZREM', KEYS[2], id)
    return {'again'}
  end
end
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])), id)
local previous = redis.call('HGET', KEYS[4], 'owner')
redis.call('HSET', KEYS[4], 'owner', ARGV[1])
local status = redis.call('HGET', KEYS[4], 'status')
if (status == 'queued' or status == 'running') and previous ~= ARGV[1] then
  redis.call('HSET', KEYS[4], 'status', 'running', 'started_at', ARGV[3])
  redis.call('HINCRBY', KEYS[4], 'runs', 1)
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], id, 'PX', ARGV[2]) end
return redis.call('HGETALL', KEYS[4])
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
