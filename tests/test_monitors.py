"""Monitors (SPEC §4): observed through their webhook receiver, GET and /v1/usage, with real
Chromium, the real test site (a page whose colour the test changes), SQLite and redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.jobs.install import install_jobs
from screenshot_service.limits.keys import create_key
from screenshot_service.monitors.install import install_monitors
from tests.jobs_helpers import FAST, JobsApp, plan, settings_for
from tests.monitor_site import SCENES

MONITOR_PLAN = plan(max_monitors=2)


@pytest.fixture
def scene() -> Iterator[str]:
    name = f"s{len(SCENES)}"
    SCENES[name] = "blank"
    yield name
    SCENES.pop(name, None)


async def start(aiohttp_client: Any, settings: Any, site: Any, pool: Any, *, key: Any = None,
                state: Any = None) -> JobsApp:  # fmt: skip
    from screenshot_service.app import create_app
    from screenshot_service.appkeys import STATE

    app = create_app(settings, pool=pool, state=state)
    install_jobs(app, **FAST)
    install_monitors(app, poll_interval=0.05)
    client = await aiohttp_client(app)
    record, raw = key or await create_key(app[STATE], "jobs", "test")
    return JobsApp(client=client, key=raw, record=record, settings=settings, site=site)


def monitor_settings(root: Path, site: Any, **sections: Any) -> Any:
    return settings_for(root, site, plans={"jobs": MONITOR_PLAN},
                        monitors={"min_interval_seconds": 1, **sections.pop("monitors", {})}, **sections)


async def create(app: JobsApp, body: dict[str, Any], key: str | None = None) -> Any:
    return await app.client.post("/v1/monitors", json=body, headers=app.auth(key))


async def monitor(app: JobsApp, monitor_id: str) -> dict[str, Any]:
    response = await app.client.get(f"/v1/monitors/{monitor_id}", headers=app.auth())
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def runs(app: JobsApp, monitor_id: str) -> list[dict[str, Any]]:
    return list((await monitor(app, monitor_id))["runs"])


async def test_create_validates_every_field_and_caps_monitors_per_plan(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any
) -> None:
    settings = monitor_settings(tmp_path, test_site, monitors={"min_interval_seconds": 60, "workers": 0})
    app = await start(aiohttp_client, settings, test_site, shared_pool)
    page = f"{test_site.url}/paint"
    hook = f"{test_site.url}/hook"  # allowed through egress; never called: no run happens here
    good = {"url": page, "interval": 60, "webhook_url": hook}
    cases = [
        ({"url": page, "webhook_url": hook}, "interval"),
        ({**good, "interval": 59}, "interval"),
        ({**good, "interval": 60.5}, "interval"),
        ({**good, "interval": True}, "interval"),
        ({**good, "threshold": 1.5}, "threshold"),
        ({**good, "threshold": "a"}, "threshold"),
        ({**good, "compare_to": "previous"}, "compare_to"),
        ({**good, "format": "pdf"}, "format"),
        ({**good, "format": "markdown"}, "format"),
        ({**good, "cache": True}, "cache"),
        ({"url": page, "interval": 60}, "webhook_url"),
        ({**good, "width": 5}, "width"),
        ({**good, "widht": 500}, "widht"),
        ({**good, "name": 5}, "name"),
        ({"interval": 60, "webhook_url": hook}, "url"),
    ]
    for body, field in cases:
        response = await create(app, body)
        error = (await response.json())["error"]
        assert response.status == 400 and error["code"] == "invalid_parameter", (body, error)
        assert field in error["details"]["fields"], (body, error)
    blocked = await create(app, {**good, "webhook_url": "http://10.1.2.3/hook"})
    assert blocked.status == 400 and (await blocked.json())["error"]["code"] == "blocked_target"

    secret = {"headers": {"X-Token": "hunter2"}, "cookies": [{"name": "sid", "value": "s3cr3t"}]}
    first = await create(app, {**good, "name": "home", "threshold": 0.01, "width": 800, **secret})
    assert first.status == 201, await first.text()
    body = await first.json()
    assert body["id"].startswith("mon_") and first.headers["Location"] == body["status_url"]
    assert (body["name"], body["url"], body["interval"], body["threshold"]) == ("home", page, 60, 0.01)
    assert body["last_run"] is None and body["last_change"] is None and body["next_run_at"]
    assert body["options"] == {"width": 800} and "hunter2" not in await first.text()
    assert "s3cr3t" not in await first.text()
    assert (await create(app, good)).status == 201
    full = await create(app, good)
    error = (await full.json())["error"]
    assert full.status == 422 and error["code"] == "monitor_limit_reached" and error["details"]["max_monitors"] == 2

    listed = await (await app.client.get("/v1/monitors", headers=app.auth())).json()
    assert [m["id"] for m in listed["monitors"]][:1] == [body["id"]] and len(listed["monitors"]) == 2
    shown = await monitor(app, body["id"])
    assert shown["runs"] == [] and "hunter2" not in json.dumps(shown)

    _, other = await app.new_key()
    assert (await app.client.get(f"/v1/monitors/{body['id']}", headers=app.auth(other))).status == 404
    assert (await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth(other))).status == 404
    assert (await (await app.client.get("/v1/monitors", headers=app.auth(other))).json())["monitors"] == []

    deleted = await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth())
    assert deleted.status == 200 and (await deleted.json())["id"] == body["id"]
    assert (await app.client.get(f"/v1/monitors/{body['id']}", headers=app.auth())).status == 404
    assert (await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth())).status == 404
    assert (await create(app, good)).status == 201  # its place is free again
