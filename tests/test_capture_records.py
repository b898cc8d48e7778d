"""The capture records behind compare_to, on SQLite, one redis-server and a Redis Cluster:
per key, the last good baseline per fingerprint, and gone with the image's retention."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from screenshot_service.capture.capture_records import (
    CaptureRecord,
    CaptureRecords,
    RedisCaptureRecords,
    SqliteCaptureRecords,
)
from screenshot_service.capture.facts import CaptureWarning
from screenshot_service.capture.options import CaptureOptions
from screenshot_service.capture.result import CaptureResult
from screenshot_service.capture.visual_change import VisualChange
from screenshot_service.metrics import Metrics
from screenshot_service.state.redis_client import connect
from screenshot_service.storage.base import StoredObject
from screenshot_service.storage.local import LocalStorage
from tests.conftest import wait_for

if TYPE_CHECKING:
    from tests.redis_cluster import RedisTestCluster
    from tests.redis_server import RedisTestServer

pytest_plugins = ["tests.redis_cluster"]


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CaptureRecords]:
    if request.param == "sqlite":
        store: CaptureRecords = SqliteCaptureRecords(tmp_path / "state.sqlite3")
        yield store
        await store.close()
        return
    if request.param == "cluster":
        cluster: RedisTestCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        client = connect(cluster.url, cluster=True)
    else:
        server: RedisTestServer = request.getfixturevalue("redis_server")
        server.start()
        server.flush()
        client = connect(server.url)
    yield RedisCaptureRecords(client)
    await client.aclose()


def record(capture_id: str, account: str = "key_a", *, seconds: float = 3600, baseline: bool = True) -> CaptureRecord:
    now = datetime.now(UTC)
    return CaptureRecord(id=capture_id, account=account, object_name=f"{capture_id}.png", format="png",
                         width=10, height=20, captured_at=now, expires_at=now + timedelta(seconds=seconds),
                         baseline=baseline)


async def test_records_belong_to_their_key_and_previous_is_the_last_good_one(records: CaptureRecords) -> None:
    await records.put(record("cap_1"), "fp")
    blank = record("cap_2", baseline=False)
    await records.put(blank, None)  # a blank capture: recorded (it can be named), not indexed
    assert await records.get("key_a", "cap_2") == blank
    assert (await records.get("key_a", "cap_1")) is not None
    assert await records.get("key_b", "cap_1") is None  # another key's id is not found
    previous = await records.previous("key_a", "fp")
    assert previous is not None and previous.id == "cap_1" and previous.object_name == "cap_1.png"
    assert await records.previous("key_b", "fp") is None
    await records.put(record("cap_3"), "fp")
    newer = await records.previous("key_a", "fp")
    assert newer is not None and newer.id == "cap_3"
    assert await records.previous("key_a", "other") is None


async def test_records_expire_with_the_image(records: CaptureRecords) -> None:
    await records.put(record("cap_old", seconds=0.2), "fp")
    assert await records.get("key_a", "cap_old") is not None

    async def gone() -> bool:
        return await records.get("key_a", "cap_old") is None and await records.previous("key_a", "fp") is None

    assert await wait_for(gone, timeout=5)


@pytest.mark.parametrize("warning", ["blank_capture", "http_error", "ready_timeout", None])
async def test_only_a_good_image_held_by_the_service_becomes_previous(tmp_path: Path, warning: str | None) -> None:
    records = SqliteCaptureRecords(tmp_path / "state.sqlite3")
    changes = VisualChange(records, LocalStorage(tmp_path / "captures", 30), Metrics(), timedelta(days=30))
    opts = CaptureOptions.from_json({"url": "https://example.com/"})
    stored = StoredObject("x.png", "https://shots.example.com/v1/files/x.png", datetime.now(UTC), 10, "image/png")
    warnings = (CaptureWarning(warning, "…"),) if warning else ()
    result = CaptureResult(stored=stored, data=b"", format="png", width=4, height=4, took_ms=0, warnings=warnings)
    await changes.record(result, opts, "key_a", held=True)
    previous = await records.previous("key_a", opts.baseline_fingerprint("key_a"))
    assert (previous is not None) == (warning is None)
    recorded = await records.get("key_a", result.id)  # recorded either way: it can still be named
    assert recorded is not None and recorded.baseline == (warning is None)
    assert recorded.expires_at - recorded.captured_at == timedelta(days=30)  # the retention, not the URL's
    in_their_bucket = dataclasses.replace(result, id="cap_" + "b" * 24, warnings=())
    await changes.record(in_their_bucket, opts, "key_b", held=False)
    assert await records.previous("key_b", opts.baseline_fingerprint("key_b")) is None
    await records.close()
