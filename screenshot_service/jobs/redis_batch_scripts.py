"""Lua for the Redis batch store (redis_batches.py): each batch step is one atomic script.

Every key lives under the job queue's prefix, so on a Redis Cluster a batch, its
item jobs, the queue and the key's active set share one hash tag and one script
may touch them all.
"""

from __future__ import annotations

# KEYS: batch hash, queue list, active set, idempotency key, then each item's job hash.
# ARGV: max_active, ttl s, has idempotency key (0|1), batch id, batch record (JSON object),
# then each item's id and record (JSON object).  Returns {"existing", batch id} |
# {"full", active count} | {"created", batch id}.
CREATE = """
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'existing', existing} end
end
local count = #KEYS - 4
local active = redis.call('SCARD', KEYS[3])
if active + count > tonumber(ARGV[1]) then return {'full', tostring(active)} end
local function store(key, json)
  local flat = {}
  for name, value in pairs(cjson.decode(json)) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', key, unpack(flat))
  redis.call('EXPIRE', key, ARGV[2])
end
store(KEYS[1], ARGV[5])
for i = 1, count do
  local id = ARGV[4 + 2 * i]
  store(KEYS[4 + i], ARGV[5 + 2 * i])
  redis.call('LPUSH', KEYS[2], id)
  redis.call('SADD', KEYS[3], id)
end
redis.call('EXPIRE', KEYS[3], ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[2]) end
return {'created', ARGV[4]}
"""

# KEYS: batch hash, active set, then each item's job hash.  ARGV: key id, finished_at, then
# each item's id.  Cancels the queued items (they stay in the queue: a worker refunds them).
# Returns the ids it canceled, or false when the batch is not this key's.
CANCEL = """
if redis.call('HGET', KEYS[1], 'key_id') ~= ARGV[1] then return false end
local canceled = {}
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == 'queued' then
    redis.call('HSET', KEYS[i], 'status', 'canceled', 'finished_at', ARGV[2], 'options', '')
    redis.call('SREM', KEYS[2], ARGV[i])
    canceled[#canceled + 1] = ARGV[i]
  end
end
return canceled
"""

# KEYS: batch hash, then each item's job hash.  ARGV: the claiming item's job id.
# The webhook is claimed when it is pending, unclaimed (or this job's already) and every item
# has ended (an item whose record expired counts as ended).  Returns the batch hash flattened,
# or false.
CLAIM_WEBHOOK = """
if redis.call('HGET', KEYS[1], 'webhook_status') ~= 'pending' then return false end
local holder = redis.call('HGET', KEYS[1], 'webhook_job')
if holder and holder ~= '' and holder ~= ARGV[1] then return false end
for i = 2, #KEYS do
  local status = redis.call('HGET', KEYS[i], 'status')
  if status == 'queued' or status == 'running' then return false end
end
redis.call('HSET', KEYS[1], 'webhook_job', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: batch hash.  ARGV: the claiming job id, status, attempts.
UPDATE_WEBHOOK = """
if redis.call('HGET', KEYS[1], 'webhook_job') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'webhook_status', ARGV[2], 'webhook_attempts', ARGV[3])
return 1
"""
