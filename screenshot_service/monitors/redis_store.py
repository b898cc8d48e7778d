"""Monitors on Redis: one set shared by every instance on the server (or cluster).

Layout (``prefix`` ``screenshot:monitors:``; on a Redis Cluster ``screenshot:{monitors}:``, one
hash tag, so each script's keys share a slot).  Times are milliseconds.  Whether a slot is due
is decided by Redis's own clock (``TIME``) in the claim script, so instances with skewed clocks
still agree; the local clock only decides when to look again::

    {p}mon:{id}        hash   record (the fixed JSON), key_id, interval (ms), next (ms),
                              last_run, last_change, baseline
    {p}due             zset   monitor ids scored by their next slot (ms)
    {p}key:{key_id}    zset   the key's monitor ids by creation (listing, the plan's cap)
    {p}runs:{id}       list   run JSON, newest first, trimmed to MAX_RUNS_KEPT

A claim reads the most overdue id, then one script moves that monitor's slot forward only if it
is still due by Redis's clock: of two instances racing for it, the second finds it not due.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..state.redis_client import RedisClient, connect, guarded
from ..state.redis_scripts import NOW_MS
from .models import MAX_RUNS_KEPT, Monitor
from .store import Claim

DEFAULT_PREFIX = "screenshot:monitors:"
CLUSTER_PREFIX = "screenshot:{monitors}:"
CLAIM_ATTEMPTS = 20  # candidates one claim looks at (each a race lost to another instance, or a deleted id)

# KEYS: monitor hash, due zset, the key's zset.  ARGV: max monitors, id, created ms, next ms,
# interval ms, key id, record.  Returns -1 when created, else the key's count (full).
CREATE = """
local count = redis.call('ZCARD', KEYS[3])
if count >= tonumber(ARGV[1]) then return count end
redis.call('HSET', KEYS[1], 'record', ARGV[7], 'key_id', ARGV[6], 'interval', ARGV[5], 'next', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return -1
"""

# KEYS: due zset, monitor hash.  ARGV: id.  Returns {'gone'} (deleted: its id is dropped),
# {'wait', next ms, now ms}, or {'claimed', the slot it was due at (ms), now ms}.
CLAIM = NOW_MS + """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
local interval = tonumber(redis.call('HGET', KEYS[2], 'interval'))
if not due or not interval then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {'gone'}
end
due = tonumber(due)
if due > now then return {'wait', tostring(due), tostring(now)} end
local following = due + (math.floor((now - due) / interval) + 1) * interval
redis.call('ZADD', KEYS[1], following, ARGV[1])
redis.call('HSET', KEYS[2], 'next', following)
return {'claimed', tostring(due), tostring(now)}
"""

# KEYS: monitor hash, runs list.  ARGV: run JSON, baseline ('' keeps it), changed (0|1), runs kept.
RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('HSET', KEYS[1], 'last_run', ARGV[1])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'last_change', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'baseline', ARGV[2]) end
return 1
"""

# KEYS: monitor hash, due zset, the key's zset, runs list.  ARGV: id, key id.  Returns 1 if deleted.
DELETE = """
if redis.call('HGET', KEYS[1], 'key_id') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class RedisMonitorStore:
    def __init__(self, url: str, *, prefix: str | None = None, cluster: bool = False) -> None:
        self.client: RedisClient = connect(url, cluster=cluster)
        self.prefix = prefix or (CLUSTER_PREFIX if cluster else DEFAULT_PREFIX)
        register = self.client.register_script
        self._create, self._claim = register(CREATE), register(CLAIM)
        self._record, self._delete = register(RECORD), register(DELETE)

    def _mon(self, monitor_id: str) -> str:
        return f"{self.prefix}mon:{monitor_id}"

    def _runs(self, monitor_id: str) -> str:
        return f"{self.prefix}runs:{monitor_id}"

    def _of_key(self, key_id: str) -> str:
        return f"{self.prefix}key:{key_id}"

    @property
    def _due(self) -> str:
        return f"{self.prefix}due"

    async def create(self, monitor: Monitor, *, max_monitors: int) -> int | None:
        keys = [self._mon(monitor.id), self._due, self._of_key(monitor.key_id)]
        args: list[str | int] = [max_monitors, monitor.id, _ms(monitor.created_at), _ms(monitor.next_run_at), monitor.interval * 1000,
                monitor.key_id, monitor.static_record()]  # fmt: skip
        count = int(await guarded(self._create(keys=keys, args=args)))
        return None if count < 0 else count

    async def get(self, monitor_id: str) -> Monitor | None:
        fields = {str(k): str(v) for k, v in (await guarded(self.client.hgetall(self._mon(monitor_id)))).items()}
        return _monitor(fields) if fields.get("record") else None

    async def of_key(self, key_id: str) -> list[Monitor]:
        ids = await guarded(self.client.zrange(self._of_key(key_id), 0, -1))
        found = [await self.get(str(monitor_id)) for monitor_id in ids]
        return [monitor for monitor in found if monitor is not None]

    async def runs(self, monitor_id: str) -> list[dict[str, Any]]:
        texts = await guarded(self.client.lrange(self._runs(monitor_id), 0, MAX_RUNS_KEPT - 1))
        return [json.loads(text) for text in texts]

    async def delete(self, monitor_id: str, key_id: str) -> Monitor | None:
        monitor = await self.get(monitor_id)
        if monitor is None or monitor.key_id != key_id:
            return None
        keys = [self._mon(monitor_id), self._due, self._of_key(key_id), self._runs(monitor_id)]
        deleted = int(await guarded(self._delete(keys=keys, args=[monitor_id, key_id])))
        return monitor if deleted else None

    async def claim(self) -> Claim:
        for _ in range(CLAIM_ATTEMPTS):
            first = await guarded(self.client.zrange(self._due, 0, 0, withscores=True))
            if not first:
                return Claim()
            monitor_id, peeked = str(first[0][0]), int(first[0][1])
            local_now = _ms(time.time())
            if peeked > local_now:  # not due by this clock: a skewed one only shifts the next poll
                return Claim(now=local_now / 1000, wait=(peeked - local_now) / 1000)
            answer = await guarded(self._claim(keys=[self._due, self._mon(monitor_id)], args=[monitor_id]))
            if answer[0] == "wait" and int(answer[1]) == peeked:  # the earliest slot is not due yet
                return Claim(now=int(answer[2]) / 1000, wait=(peeked - int(answer[2])) / 1000)
            if answer[0] == "claimed":
                monitor = await self.get(monitor_id)
                if monitor is not None:  # else deleted right after the claim: nothing to run
                    return Claim(monitor, scheduled_at=int(answer[1]) / 1000, now=int(answer[2]) / 1000)
            # Another instance claimed it first, or it was deleted: look at the next earliest.
        return Claim(wait=0.0)

    async def record_run(self, monitor_id: str, run: dict[str, Any], *, baseline: str | None,
                         changed: bool) -> Monitor | None:  # fmt: skip
        keys = [self._mon(monitor_id), self._runs(monitor_id)]
        args = [json.dumps(run), baseline or "", 1 if changed else 0, MAX_RUNS_KEPT]
        if not int(await guarded(self._record(keys=keys, args=args))):
            return None
        return await self.get(monitor_id)

    async def count(self) -> int:
        return int(await guarded(self.client.zcard(self._due)))

    async def close(self) -> None:
        await guarded(self.client.aclose())


def _ms(unix: float) -> int:
    return int(unix * 1000)


def _monitor(fields: dict[str, str]) -> Monitor:
    return Monitor.from_record(fields["record"], next_run_at=int(float(fields["next"])) / 1000,
                               last_run=fields.get("last_run"), last_change=fields.get("last_change"),
                               baseline=fields.get("baseline"))  # fmt: skip
