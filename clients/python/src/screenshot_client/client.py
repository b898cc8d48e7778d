"""The async client for a running screenshot service (README "Python client", SPEC §3).

``ScreenshotClient`` is on aiohttp.  It checks nothing the server checks: options go as
they are, and the server's 400 says which field is wrong.  429 and 503 are retried after
their ``Retry-After`` while the call's retry budget lasts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from types import TracebackType
from typing import Any

import aiohttp

from . import signing
from .errors import ScreenshotError, error_from_answer, json_object, loads, redact, redirected

RETRIED = (429, 503)  # the statuses that say "later", with a Retry-After
FINISHED = ("succeeded", "failed", "canceled")  # a job in one of these will not change
BATCH_ENDED = ("done", "canceled")  # a batch whose every item has ended
DEFAULT_WAIT = 1.0  # seconds before a retry whose answer gave no usable Retry-After


class ScreenshotClient:
    """Async client: ``async with ScreenshotClient(base_url, api_key) as shots: ...``.

    ``retry_budget``: seconds a call may spend waiting out 429/503 answers (0: never retry).
    ``timeout``: seconds for one HTTP exchange.  ``session``: an aiohttp session of yours
    (then closing it is yours too).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry_budget: float = 10.0,
        timeout: float = 60.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_budget = retry_budget
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    def __repr__(self) -> str:  # never the key
        return f"ScreenshotClient({self.base_url!r})"

    async def __aenter__(self) -> ScreenshotClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # the API -----------------------------------------------------------------------------
    async def screenshot(self, url: str | None = None, **options: Any) -> bytes | dict[str, Any]:
        """One capture (``POST /v1/screenshot``): the image's bytes when the answer is an image
        (``response_type="image"``; the UTF-8 document for ``format="html"``, ``"markdown"`` or
        ``"text"``), else the JSON result."""
        return await self._call("POST", "/v1/screenshot", json=_body(url, options))

    async def submit_job(
        self, url: str | None = None, *, idempotency_key: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Enqueue a capture (``POST /v1/jobs``): the job.  The Idempotency-Key (made here unless
        given) makes a retried submission return the same job instead of a second one."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return json_object(await self._call("POST", "/v1/jobs", json=_body(url, options), headers=headers))

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job as it is now (``GET /v1/jobs/{id}``)."""
        return json_object(await self._call("GET", f"/v1/jobs/{job_id}"))

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job (``DELETE /v1/jobs/{id}``)."""
        return json_object(await self._call("DELETE", f"/v1/jobs/{job_id}"))

    async def wait_job(
        self, job: str | dict[str, Any], *, timeout: float = 60.0, poll_interval: float = 1.0
    ) -> dict[str, Any]:
        """Poll until the job has finished (``succeeded``, ``failed`` or ``canceled``) and return
        it; ``result`` or ``error`` says how it went.  Polls count against the key's rate."""
        current = job if isinstance(job, dict) else await self.job(job)
        end = time.monotonic() + timeout
        while current["status"] not in FINISHED:
            left = end - time.monotonic()
            if left <= 0:
                raise ScreenshotError(0, "wait_timeout", f"job {current['id']} still {current['status']} "
                                      f"after {timeout:g} s", {"job": current})
            await asyncio.sleep(min(poll_interval, left))
            current = await self.job(current["id"])
        return current

    async def submit_batch(
        self, requests: list[dict[str, Any]], defaults: dict[str, Any] | None = None, webhook_url: str | None = None,
        *, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Enqueue many captures at once (``POST /v1/batches``): the batch.  ``requests`` are capture
        options (``url`` or ``html`` each), ``defaults`` apply under every one of them; all are checked
        and charged up front, or none.  The Idempotency-Key (made here unless given) makes a retried
        submission return the same batch."""
        body: dict[str, Any] = {"requests": requests}
        if defaults is not None:
            body["defaults"] = defaults
        if webhook_url is not None:
            body["webhook_url"] = webhook_url
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return json_object(await self._call("POST", "/v1/batches", json=body, headers=headers))

    async def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch and its items as they are now (``GET /v1/batches/{id}``)."""
        return json_object(await self._call("GET", f"/v1/batches/{batch_id}"))

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Cancel the batch's queued items (``DELETE /v1/batches/{id}``); running ones finish."""
        return json_object(await self._call("DELETE", f"/v1/batches/{batch_id}"))

    async def wait_batch(
        self, batch: str | dict[str, Any], *, timeout: float = 300.0, poll_interval: float = 1.0
    ) -> dict[str, Any]:
        """Poll until every item has ended (``done`` or ``canceled``) and return the batch; each
        item's ``result`` or ``error`` says how it went.  Polls count against the key's rate."""
        current = batch if isinstance(batch, dict) else await self.batch(batch)
        end = time.monotonic() + timeout
        while current["status"] not in BATCH_ENDED:
            left = end - time.monotonic()
            if left <= 0:
                raise ScreenshotError(0, "wait_timeout", f"batch {current['id']} still {current['status']} "
                                      f"after {timeout:g} s", {"batch": current})
            await asyncio.sleep(min(poll_interval, left))
            current = await self.batch(current["id"])
        return current

    async def usage(self) -> dict[str, Any]:
        """The key's plan, rate and this month's quota (``GET /v1/usage``)."""
        return json_object(await self._call("GET", "/v1/usage"))

    def signed_url(
        self, key_id: str, signing_secret: str, url: str, expires_in: float | None = None, **options: Any
    ) -> str:
        """A signed ``GET /v1/screenshot`` link on this client's service for an ``<img src>``; no
        network call (``signing.signed_url`` with this ``base_url``)."""
        return signing.signed_url(self.base_url, key_id, signing_secret, url, expires_in, **options)

    # monitors ----------------------------------------------------------------------------
    async def create_monitor(
        self, url: str, *, interval: int, webhook_url: str, threshold: float | None = None, name: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Watch a page (``POST /v1/monitors``): a capture every ``interval`` seconds, compared with
        the previous good one; ``webhook_url`` gets a signed POST when the change reaches ``threshold``."""
        body = {"url": url, "interval": interval, "webhook_url": webhook_url, **options}
        body.update({k: v for k, v in (("threshold", threshold), ("name", name)) if v is not None})
        return json_object(await self._call("POST", "/v1/monitors", json=body))

    async def get_monitor(self, monitor_id: str) -> dict[str, Any]:
        """The monitor with its last runs, newest first (``GET /v1/monitors/{id}``)."""
        return json_object(await self._call("GET", f"/v1/monitors/{monitor_id}"))

    async def list_monitors(self) -> list[dict[str, Any]]:
        """The key's monitors, oldest first (``GET /v1/monitors``)."""
        return list(json_object(await self._call("GET", "/v1/monitors"))["monitors"])

    async def delete_monitor(self, monitor_id: str) -> dict[str, Any]:
        """Stop and remove a monitor (``DELETE /v1/monitors/{id}``): the monitor as it was."""
        return json_object(await self._call("DELETE", f"/v1/monitors/{monitor_id}"))

    # one exchange, retried -----------------------------------------------------------------
    async def _call(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> bytes | dict[str, Any]:
        end = time.monotonic() + self.retry_budget
        while True:
            try:
                return await self._once(method, path, json, headers)
            except ScreenshotError as error:
                if error.status not in RETRIED:
                    raise
                wait = DEFAULT_WAIT if error.retry_after is None else error.retry_after
                if time.monotonic() + wait > end:
                    raise  # the budget cannot cover the wait: the caller sees the 429/503
                await asyncio.sleep(wait)

    async def _once(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None
    ) -> bytes | dict[str, Any]:
        if self._session is None:  # made inside the running loop, as aiohttp wants
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        sent = {"Authorization": f"Bearer {self._api_key}", **(headers or {})}
        # Redirects are reported, never followed (that would re-send the key and body: html, cookies,
        # a bucket's credentials); transport errors drop their cause, which can carry the key.
        try:
            async with self._session.request(method, self.base_url + path, json=body, headers=sent,
                                             allow_redirects=False) as response:
                data = await response.read()
                if 300 <= response.status < 400:
                    raise redirected(response.status, response.headers.get("Location", ""))
                if response.status >= 400:
                    raise error_from_answer(response.status, data, response.headers.get("Retry-After"), self._api_key)
                if response.content_type == "application/json":
                    return json_object(loads(data))
                return data
        except aiohttp.ClientError as exc:
            raise ScreenshotError(0, "connection_error", redact(f"{type(exc).__name__}: {exc}", self._api_key)) from None
        except TimeoutError:
            raise ScreenshotError(0, "connection_error", "no answer within the client's timeout") from None


def _body(url: str | None, options: dict[str, Any]) -> dict[str, Any]:
    return options if url is None else {"url": url, **options}


