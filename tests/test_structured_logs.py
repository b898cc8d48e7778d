"""log.format = "json": every record of a real capture is one JSON object a line, naming the
request it was written for (the X-Request-ID the caller got back) or the job it ran for."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from screenshot_service import config_loading
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.jobs import sqlite_jobs
from screenshot_service.jobs.models import QUEUED, Job, new_job_id, now_utc
from screenshot_service.observability import JsonAccessLogger, access_log, configure_logging, log_handler
from tests.conftest import TestSite as Site
from tests.conftest import wait_for
from tests.jobs_helpers import settings_for, start_app
from tests.test_metrics import start_service

# A page's error whose text tries to close the JSON string and add fields, then lines of its own.
THROWN = 'boom", "request_id": "FORGED", "level": "CRITICAL\\n{"logger": "forged", "message": "next"}'
THROWING_JS = f"throw new Error('{THROWN}')"


class JsonLog:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]  # each line parses alone

    def matching(self, text: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if text in record["message"]]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    """The handler ``serve`` installs with log.format = "json", on the service's loggers."""
    stream = io.StringIO()
    handler = log_handler("json")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logger = logging.getLogger("screenshot_service")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield JsonLog(stream)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_capture_s_records_are_json_lines_carrying_its_request_id(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: BrowserPool, json_log: JsonLog,
) -> None:
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, shared_pool,
                              runner_kwargs={"access_log_class": JsonAccessLogger, "access_log": access_log})
    thrown = await svc.client.post("/v1/screenshot", headers=svc.auth(),
                                   json={"url": test_site.url + "/paint", "js": THROWING_JS})
    assert thrown.status == 400, await thrown.text()
    timed_out = await svc.client.get("/v1/screenshot", params={
        "url": test_site.url + "/slow?s=2", "api_key": svc.key, "timeout": "1"})
    assert timed_out.status == 504, await timed_out.text()
    thrown_id, timed_out_id = thrown.headers["X-Request-ID"], timed_out.headers["X-Request-ID"]
    assert await wait_for(lambda: len([r for r in json_log.records() if r["logger"] == access_log.name]) >= 2)

    records = json_log.records()
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    assert all(record["time"].endswith("Z") for record in records)
    by_request = {rid: [r for r in records if r.get("request_id") == rid] for rid in (thrown_id, timed_out_id)}

    # The page's error: one record, its text inside the message, the forged fields only text.
    [page_error] = [r for r in by_request[thrown_id] if r["message"].startswith("capture failed")]
    assert page_error["level"] == "INFO" and page_error["logger"] == "screenshot_service.capture"
    assert 'threw Error: boom\\", \\"request_id\\": \\"FORGED\\"' in page_error["message"]
    assert not any(r.get("request_id") == "FORGED" or r["logger"] == "forged" for r in records)

    # A warning from the capture path: the deadline ran out.
    [warning] = [r for r in by_request[timed_out_id] if r["message"].startswith("capture failed")]
    assert warning["level"] == "WARNING" and "capture_timeout" in warning["message"]

    # The access records: their fields are the record's own fields.
    [access] = [r for r in by_request[thrown_id] if r["logger"] == access_log.name]
    assert access["message"] == "POST /v1/screenshot 400"
    assert access["status"] == 400 and access["method"] == "POST" and access["path"] == "/v1/screenshot"
    assert access["key_id"] == svc.key_id and access["target_host"] == "127.0.0.1"
    [timed_out_access] = [r for r in by_request[timed_out_id] if r["logger"] == access_log.name]
    assert timed_out_access["status"] == 504 and "api_key" not in json.dumps(timed_out_access)


async def test_a_job_s_records_carry_its_id_and_the_id_of_the_request_that_submitted_it(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: BrowserPool, json_log: JsonLog,
) -> None:
    jobs = await start_app(aiohttp_client, settings_for(tmp_path / "svc", test_site), test_site, shared_pool)
    submitted = await jobs.submit("/paint", js=THROWING_JS)
    assert submitted.status == 202, await submitted.text()
    job_id, request_id = (await submitted.json())["id"], submitted.headers["X-Request-ID"]
    assert (await jobs.wait_done(job_id))["status"] == "failed"
    assert await wait_for(lambda: any(r.get("job_id") == job_id for r in json_log.matching("capture failed")))

    [queued] = json_log.matching("job queued")
    assert queued["request_id"] == request_id and queued["job_id"] == job_id
    [failed] = json_log.matching("capture failed")  # written by a worker, after the request ended
    assert failed["job_id"] == job_id and failed["request_id"] == request_id


def test_an_exception_stays_inside_its_one_json_record(json_log: JsonLog) -> None:
    log = logging.getLogger("screenshot_service.test_structured_logs")
    try:
        raise RuntimeError(f"Error: {THROWN}\u2028second line")
    except RuntimeError:
        log.exception("capture failed unexpectedly")
    log.info("next record")
    raw = json_log.stream.getvalue()
    assert raw.isascii()  # U+2028 and the like escaped: no reader splits a record on them
    first, second = json_log.records()
    assert first["message"] == "capture failed unexpectedly" and first["level"] == "ERROR"
    assert first["exception"].startswith("Traceback (most recent call last):\n")
    assert first["exception"].endswith(f"RuntimeError: Error: {THROWN}\u2028second line")
    assert second["message"] == "next record" and "exception" not in second


def test_serve_s_logging_follows_the_log_section(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    level = root.level
    try:
        configure_logging(config_loading.load(None, {"SCREENSHOT_LOG_FORMAT": "json",
                                                     "SCREENSHOT_LOG_LEVEL": "warning"}).log)
        [handler] = root.handlers
        assert root.level == logging.WARNING
        record = logging.LogRecord("screenshot_service.x", logging.WARNING, __file__, 1, "hi %s", ("there",), None)
        assert json.loads(handler.format(record))["message"] == "hi there"
        monkeypatch.setattr(root, "handlers", [])  # a fresh process, as serve's
        configure_logging(config_loading.load(None, {}).log)
        [handler] = root.handlers
        assert handler.format(record).endswith(" WARNING screenshot_service.x hi there")
    finally:
        root.setLevel(level)


async def test_a_job_store_made_before_jobs_kept_their_request_id_opens_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    old_schema = sqlite_jobs.SCHEMA.replace("    request_id TEXT NOT NULL DEFAULT '',\n", "")
    assert old_schema != sqlite_jobs.SCHEMA
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
    store = sqlite_jobs.SqliteJobStore(path)
    job = Job(id=new_job_id(), key_id="key_1", status=QUEUED, options={}, webhook_url=None, base_url="http://x",
              created_at=now_utc(), reservation_id="r", period="2026-12", request_id="req-7")
    assert (await store.create(job, max_active=10, ttl=60)).outcome == "created"
    stored = await store.get(job.id)
    assert stored is not None and stored.request_id == "req-7"
