"""A Python client for a running screenshot service (README "Python client", SPEC §3).

``ScreenshotClient`` is async, on aiohttp; ``BlockingScreenshotClient`` runs
one on an event loop of its own in a thread, for scripts.  The client checks
nothing the server checks: options go as they are, and the server's 400 says
which field is wrong.  Every failure is one ``ScreenshotError`` carrying the
error JSON (``status``, ``code``, ``message``, ``details``).  429 and 503 are
retried after their ``Retry-After`` while the call's retry budget lasts.

It uses nothing of the server's but ``signing`` (stdlib only), so it can be
imported where Chromium and the server's dependencies are not wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import threading
import time
import uuid
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from .signing import signed_url

__all__ = ["BlockingScreenshotClient", "ScreenshotClient", "ScreenshotError", "signed_url"]

T = TypeVar("T")

RETRIED = (429, 503)  # the statuses that say "later", with a Retry-After
FINISHED = ("succeeded", "failed", "canceled")  # a job in one of these will not change
DEFAULT_WAIT = 1.0  # seconds before a retry whose answer gave no usable Retry-After


class ScreenshotError(Exception):
    """What the service answered instead of a result (or that no answer came: ``status`` 0)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after  # seconds, from Retry-After (429, 503)

    def __repr__(self) -> str:
        return f"ScreenshotError(status={self.status}, code={self.code!r}, message={self.message!r})"


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
        (``response_type="image"``), else the JSON result."""
        return await self._call("POST", "/v1/screenshot", json=_body(url, options))

    async def submit_job(
        self, url: str | None = None, *, idempotency_key: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Enqueue a capture (``POST /v1/jobs``): the job.  The Idempotency-Key (made here unless
        given) makes a retried submission return the same job instead of a second one."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return _json(await self._call("POST", "/v1/jobs", json=_body(url, options), headers=headers))

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job as it is now (``GET /v1/jobs/{id}``)."""
        return _json(await self._call("GET", f"/v1/jobs/{job_id}"))

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job (``DELETE /v1/jobs/{id}``)."""
        return _json(await self._call("DELETE", f"/v1/jobs/{job_id}"))

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

    async def usage(self) -> dict[str, Any]:
        """The key's plan, rate and this month's quota (``GET /v1/usage``)."""
        return _json(await self._call("GET", "/v1/usage"))

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
                    raise _redirected(response.status, response.headers.get("Location", ""))
                if response.status >= 400:
                    raise _error(response.status, data, response.headers.get("Retry-After"), self._api_key)
                if response.content_type == "application/json":
                    return _json(_loads(data))
                return data
        except aiohttp.ClientError as exc:
            raise ScreenshotError(0, "connection_error", _redact(f"{type(exc).__name__}: {exc}", self._api_key)) from None
        except TimeoutError:
            raise ScreenshotError(0, "connection_error", "no answer within the client's timeout") from None


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

    def usage(self) -> dict[str, Any]:
        return self._run(self._client.usage())


def _body(url: str | None, options: dict[str, Any]) -> dict[str, Any]:
    return options if url is None else {"url": url, **options}


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise ScreenshotError(0, "malformed_answer", "the service's JSON answer could not be read") from None


def _json(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ScreenshotError(0, "malformed_answer", f"expected a JSON object, got {type(answer).__name__}")
    return answer


def _error(status: int, data: bytes, retry_after: str | None, api_key: str) -> ScreenshotError:
    """The error JSON as a ScreenshotError; an answer not in that shape (a proxy's page) still is
    one.  The key is redacted from whatever message is built from the answer (a page may echo it)."""
    wait = _seconds(retry_after)
    with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
        error = json.loads(data)["error"]
        return ScreenshotError(int(error.get("status", status)), str(error["code"]),
                               _redact(str(error.get("message", "")), api_key), error.get("details") or {},
                               retry_after=wait)
    text = _redact(data[:200].decode("utf-8", "replace").strip(), api_key)
    return ScreenshotError(status, "http_error", text or f"HTTP {status}", retry_after=wait)


def _redirected(status: int, location: str) -> ScreenshotError:
    return ScreenshotError(status, "redirected", f"the service answered {status} towards {location or 'nowhere'}; "
                           "the client does not follow redirects (check base_url)", {"location": location})


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "[api key]") if api_key else text


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds, or an HTTP date."""
    if not retry_after:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(retry_after))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time())
    return None

