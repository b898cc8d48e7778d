"""Memory a page grows, wherever it grows it (Step 15, findings 4 and 6).

Measured before: a PDF whose printing the memory guard stopped answered 500; Blobs took the
shared browser process to 2.1 GB and CacheStorage to 1.36 GB, and those captures answered 200.
Now whatever fails after the guard stopped a page is 422 ``page_memory_exceeded``, uncharged;
the browser and its utility processes are watched too (over their limit the browser is replaced
and its captures fail with 422); and each origin of a page has a storage quota the page sees.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

from screenshot_service.browser.pool import BrowserPool
from tests.conftest import Service, image_of, wait_for
from tests.jobs_helpers import poll_until_done
from tests.site import QUOTA_RGB

# Allocates JS arrays (up to 1 GB) for 8 s once printing starts: the guard stops it inside printToPDF.
PRINT_HOG = ("<p>printed</p><script>addEventListener('beforeprint', () => { const keep = [];"
             " const end = Date.now() + 8000; while (Date.now() < end) {"
             " if (keep.length < 128) keep.push(new Array(1e6).fill(Math.random())); } });</script>")
OUTCOME = "#stored,#quota,#failed"  # what the storage pages show when they are done (tests/site.py)


def _tree(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        found.add(parent)
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return found


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _resident_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return 0
    return sum(int(fields.get(name, "0 kB").split()[0]) for name in ("RssAnon", "RssShmem")) // 1024


async def _used(service: Service) -> int:
    usage = await service.client.get("/v1/usage", headers=service.auth())
    assert usage.status == 200
    return int((await usage.json())["quota"]["used"])


async def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return dict((await response.json())["error"])


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_a_pdf_the_memory_guard_stops_while_printing_is_a_422_uncharged(
    make_service: Callable[..., Any], make_pool: Callable[..., Any]
) -> None:
    pool: BrowserPool = await make_pool(pool_size=1, max_page_memory_mb=256)
    service = await make_service(pool=pool)
    pids = pool.chromium_pids()
    processes = len(_tree(pids[0]))
    body = {"html": PRINT_HOG, "format": "pdf"}
    error = await _error(await service.client.post("/v1/screenshot", json=body, headers=service.auth()), 422)
    assert error["code"] == "page_memory_exceeded" and error["details"] == {"limit_mb": 256}, error
    # The same page as a job: failed with the same error.
    submitted = await service.client.post("/v1/jobs", json=body, headers=service.auth())
    assert submitted.status == 202, await submitted.text()
    job_id = (await submitted.json())["id"]

    async def job() -> Any:
        return await (await service.client.get(f"/v1/jobs/{job_id}", headers=service.auth())).json()

    done = await poll_until_done(job)
    assert done["status"] == "failed" and done["error"]["code"] == "page_memory_exceeded", done
    assert await _used(service) == 0
    # The browser was not restarted and serves PDFs again; no renderer of the stopped pages lingers.
    ordinary = await service.client.post("/v1/screenshot", headers=service.auth(), json={
        "html": "<p>fine</p>", "format": "pdf", "response_type": "image"})
    assert ordinary.status == 200 and (await ordinary.read()).startswith(b"%PDF")
    assert pool.chromium_pids() == pids and pool.restarts == 0
    assert await wait_for(lambda: len(_tree(pids[0])) <= processes)


async def test_blobs_past_the_browser_limit_fail_its_captures_with_422_and_the_browser_is_replaced(
    make_service: Callable[..., Any], make_pool: Callable[..., Any]
) -> None:
    pool: BrowserPool = await make_pool(pool_size=2, max_browser_memory_mb=256)
    service = await make_service(pool=pool)
    # Two captures at once first, so the client's two keep-alive connections are in the baseline.
    assert [r.status for r in await asyncio.gather(service.shot("/paint"), service.shot("/paint"))] == [200, 200]
    assert await wait_for(lambda: pool.stats()["warm"] == 2)
    fds, old = _open_fds(), pool.chromium_pids()
    old_processes = _tree(old[0])
    # A capture beside the hog in the same browser (waiting, up to its deadline, for an element that
    # never comes): nothing says which page grew the browser, so it fails too.
    beside = asyncio.ensure_future(service.shot("/paint", wait_for_selector="#never"))
    assert await wait_for(lambda: pool.stats()["in_use"] == 1)
    error = await _error(await service.shot("/blobs?mb=640", wait_for_selector=OUTCOME), 422)
    assert error["code"] == "page_memory_exceeded" and error["details"] == {"limit_mb": 256}, error
    assert (await _error(await beside, 422))["code"] == "page_memory_exceeded"
    assert await _used(service) == 2  # the first two only
    # The overgrown browser is gone with every process it had; a fresh one serves at once.
    assert await wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in old_processes))
    assert await wait_for(lambda: pool.ready and pool.chromium_pids() not in ([], old))
    assert pool.restarts == 1
    again = await service.shot("/paint")
    assert again.status == 200, await again.text()
    assert await wait_for(lambda: pool.stats()["warm"] == 2)
    assert await wait_for(lambda: _open_fds() <= fds), (_open_fds(), fds)


@pytest.mark.parametrize("page", ["/cache-fill", "/idb-fill"])
async def test_storage_past_the_quota_fails_in_the_page_and_the_capture_goes_on(
    make_service: Callable[..., Any], make_pool: Callable[..., Any], page: str
) -> None:
    pool: BrowserPool = await make_pool(pool_size=1, max_page_storage_mb=64)
    service = await make_service(pool=pool)
    browser = pool.chromium_pids()[0]
    before = _resident_mb(browser)
    peak = before

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _resident_mb(browser))
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    try:
        answer = await service.shot(f"{page}?mb=512", wait_for_selector=OUTCOME)
    finally:
        sampler.cancel()
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    title = body["page"]["title"]
    assert title.startswith("QuotaExceededError after "), title
    assert int(title.rsplit(" ", 1)[1]) <= 64
    image = image_of(await (await service.client.get(_path(body["url"]))).read()).convert("RGB")
    assert image.getpixel((200, 200)) == QUOTA_RGB
    # What the page stored stayed in its quota: the browser grew by about that, not by 512 MB.
    assert peak - before < 64 + 96, (before, peak)
    assert await _used(service) == 1
