"""The blocking client: the async one on an event loop of its own, in a thread, for scripts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from .client import ScreenshotClient

T = TypeVar("T")


class BlockingScreenshotClient:
    """The same calls, blocking: a ``ScreenshotClient`` on an event loop in a thread of its own.

    ``with BlockingScreenshotClient(base_url, api_key) as shots: png = shots.screenshot(...)``.
    Safe to call from several threads; do not call it from inside a running event loop's thread
    (use ``ScreenshotClient`` there).
    """

    def __init__(self, base_url: str, api_key: str, *, retry_budget: float = 10.0, timeout: float = 60.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="screenshot-client", daemon=True)
        self._thread.start()
        self._client = ScreenshotClient(base_url, api_key, retry_budget=retry_budget, timeout=timeout)

    def __repr__(self) -> str:
        return f"BlockingScreenshotClient({self._client.base_url!r})"

    def __enter__(self) -> BlockingScreenshotClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        await self._client.close()
        await asyncio.sleep(0)  # let the closed connections' transports finish closing
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()  # the resolver's threads

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            call.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def screenshot(self, url: str | None = None, **options: Any) -> bytes | dict[str, Any]:
        return self._run(self._client.screenshot(url, **options))

    def submit_job(self, url: str | None = None, *, idempotency_key: str | None = None, **options: Any) -> dict[str, Any]:
        return self._run(self._client.submit_job(url, idempotency_key=idempotency_key, **options))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._run(self._client.job(job_id))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._run(self._client.cancel_job(job_id))

    def wait_job(self, job: str | dict[str, Any], *, timeout: float = 60.0, poll_interval: float = 1.0) -> dict[str, Any]:
        return self._run(self._client.wait_job(job, timeout=timeout, poll_interval=poll_interval))

    def submit_batch(
        self, requests: list[dict[str, Any]], defaults: dict[str, Any] | None = None, webhook_url: str | None = None,
        *, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._run(self._client.submit_batch(requests, defaults, webhook_url, idempotency_key=idempotency_key))

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._run(self._client.batch(batch_id))

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._run(self._client.cancel_batch(batch_id))

    def wait_batch(self, batch: str | dict[str, Any], *, timeout: float = 300.0, poll_interval: float = 1.0) -> dict[str, Any]:
        return self._run(self._client.wait_batch(batch, timeout=timeout, poll_interval=poll_interval))

    def usage(self) -> dict[str, Any]:
        return self._run(self._client.usage())

    def create_monitor(
        self, url: str, *, interval: int, webhook_url: str, threshold: float | None = None, name: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return self._run(self._client.create_monitor(url, interval=interval, webhook_url=webhook_url,
                                                     threshold=threshold, name=name, **options))

    def get_monitor(self, monitor_id: str) -> dict[str, Any]:
        return self._run(self._client.get_monitor(monitor_id))

    def list_monitors(self) -> list[dict[str, Any]]:
        return self._run(self._client.list_monitors())

    def delete_monitor(self, monitor_id: str) -> dict[str, Any]:
        return self._run(self._client.delete_monitor(monitor_id))

    def signed_url(
        self, key_id: str, signing_secret: str, url: str, expires_in: float | None = None, **options: Any
    ) -> str:
        return self._client.signed_url(key_id, signing_secret, url, expires_in, **options)
