"""screenshot_service.client against the real service (in-process app, real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from screenshot_service import client as client_module
from screenshot_service import signing
from screenshot_service.client import BlockingScreenshotClient, ScreenshotClient, ScreenshotError, signed_url
from tests.conftest import Service, image_of
from tests.site import PAINT_RGB


def base(service: Service) -> str:
    return str(service.client.make_url("")).rstrip("/")


async def test_screenshot_gives_bytes_for_an_image_and_the_json_otherwise(service: Service) -> None:
    async with ScreenshotClient(base(service), service.key) as shots:
        png = await shots.screenshot(service.site.url + "/paint", width=320, height=200, response_type="image")
        assert isinstance(png, bytes)
        image = image_of(png)
        assert image.size == (320, 200) and image.convert("RGB").getpixel((200, 150)) == PAINT_RGB  # the box
        result = await shots.screenshot(service.site.url + "/paint", format="jpeg")  # the API's default: json
        assert isinstance(result, dict) and result["format"] == "jpeg" and result["url"].startswith("http")
        html = await shots.screenshot(html="<body style='background:rgb(0,0,255)'></body>", response_type="image")
        assert isinstance(html, bytes) and image_of(html).convert("RGB").getpixel((5, 5)) == (0, 0, 255)
        usage = await shots.usage()
    assert usage["key_id"] == service.key_id and usage["quota"]["used"] == 3


async def test_an_error_answer_raises_with_the_error_json(service: Service) -> None:
    async with ScreenshotClient(base(service), service.key) as shots:
        try:
            await shots.screenshot(service.site.url + "/paint", width=5, colour="red")
        except ScreenshotError as error:
            assert (error.status, error.code) == (400, "invalid_parameter")
            assert set(error.details["fields"]) == {"width", "colour"}  # the server's words, not the client's
            assert "width" in error.message
        else:
            raise AssertionError("no ScreenshotError")
    async with ScreenshotClient(base(service), "sk_wrong") as stranger:
        try:
            await stranger.usage()
        except ScreenshotError as error:
            assert (error.status, error.code) == (401, "invalid_api_key")
        else:
            raise AssertionError("no ScreenshotError")


async def test_429_is_retried_within_the_budget_and_raised_without_one(make_service: Any) -> None:
    service: Service = await make_service(plan="free")  # 1 request/s, burst 1, 1 capture at a time
    url = service.site.url + "/paint"
    async with ScreenshotClient(base(service), service.key, retry_budget=0) as impatient:
        answers = await asyncio.gather(impatient.usage(), impatient.screenshot(url), return_exceptions=True)
    refused = [a for a in answers if isinstance(a, ScreenshotError)]
    assert len(refused) == 1 and refused[0].status == 429 and refused[0].code == "rate_limited"
    assert refused[0].retry_after is not None and refused[0].retry_after >= 1
    charged = 0 if isinstance(answers[1], ScreenshotError) else 1  # the capture, if it was the one let in
    async with ScreenshotClient(base(service), service.key, retry_budget=20) as patient:
        # at once, both over the plan's rate: the later ones wait out Retry-After and get through
        results = await asyncio.gather(patient.screenshot(url, response_type="image"),
                                       patient.screenshot(url, response_type="image"))
        assert all(isinstance(r, bytes) and image_of(r).size == (1280, 800) for r in results)
        usage = await patient.usage()
    assert usage["quota"]["used"] == charged + 2


async def test_a_job_is_submitted_and_waited_for(service: Service) -> None:
    async with ScreenshotClient(base(service), service.key) as shots:
        job = await shots.submit_job(service.site.url + "/paint", width=400, height=300)
        assert job["id"].startswith("job_") and job["status"] in ("queued", "running", "succeeded")
        done = await shots.wait_job(job, timeout=60, poll_interval=0.1)
        assert done["status"] == "succeeded" and done["result"]["width"] == 400
        again = await shots.wait_job(job["id"])  # by id, already finished
        assert again["result"] == done["result"]
        replay = await shots.submit_job(service.site.url + "/paint", idempotency_key="k1", width=400, height=300)
        same = await shots.submit_job(service.site.url + "/paint", idempotency_key="k1", width=400, height=300)
        assert same["id"] == replay["id"] != job["id"]  # the same job, not a second one


async def test_the_blocking_client_works_from_plain_code(service: Service) -> None:
    def script() -> tuple[Any, Any, Any]:  # what a synchronous program does, in a thread of its own
        with BlockingScreenshotClient(base(service), service.key) as shots:
            png = shots.screenshot(service.site.url + "/paint", response_type="image")
            job = shots.wait_job(shots.submit_job(service.site.url + "/paint"), poll_interval=0.1)
            try:
                shots.screenshot(service.site.url + "/paint", format="gif")
                failure = None
            except ScreenshotError as error:
                failure = error
            return png, job, (failure, shots.usage())

    png, job, (failure, usage) = await asyncio.to_thread(script)
    assert isinstance(png, bytes) and image_of(png).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert job["status"] == "succeeded"
    assert failure is not None and failure.code == "invalid_parameter" and "format" in failure.details["fields"]
    assert usage["quota"]["used"] == 2


async def test_the_clients_signed_url_returns_the_image_without_any_network_call(service: Service) -> None:
    assert client_module.signed_url is signing.signed_url  # one implementation
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    link = signed_url(base(service), record.id, record.signing_secret, service.site.url + "/paint",
                      expires_in=60, width=300, height=200, cache=True)
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        assert image_of(await response.read()).size == (300, 200)
    async with aiohttp.ClientSession() as session, session.get(link.replace("width=300", "width=301")) as response:
        assert response.status == 401 and (await response.json())["error"]["code"] == "invalid_signature"
    # the SPEC's spelling, on the client: signed_url(key_id, signing_secret, url, ...) on its base_url
    async with ScreenshotClient(base(service), service.key) as shots:
        own = shots.signed_url(record.id, record.signing_secret, service.site.url + "/paint", width=200, height=100)
    assert own == signed_url(base(service), record.id, record.signing_secret, service.site.url + "/paint",
                             width=200, height=100)
    async with aiohttp.ClientSession() as session, session.get(own) as response:
        assert response.status == 200 and image_of(await response.read()).size == (200, 100)


async def test_no_answer_is_a_screenshot_error_too_without_the_transport_error_as_cause() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ScreenshotClient(f"http://127.0.0.1:{port}", "sk_secret_key", retry_budget=0) as shots:
        try:
            await shots.usage()
        except ScreenshotError as error:
            assert (error.status, error.code) == (0, "connection_error")
            assert error.__cause__ is None and error.__suppress_context__
            assert "sk_secret_key" not in str(error)
        else:
            raise AssertionError("no ScreenshotError")
    assert "sk_secret_key" not in repr(shots)


@contextlib.asynccontextmanager
async def _serving(handler: Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.StreamResponse]]) -> AsyncIterator[str]:
    """A loopback server answering every path with ``handler``; yields its base URL."""
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_a_redirect_is_reported_and_never_followed_with_the_key_or_the_body() -> None:
    seen: list[tuple[str, str]] = []  # (method, Authorization) of each request the other origin got

    async def elsewhere(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((request.method, request.headers.get("Authorization", "")))
        return aiohttp.web.json_response({"stolen": await request.text()})

    async with _serving(elsewhere) as other_url:

        async def redirecting(request: aiohttp.web.Request) -> aiohttp.web.Response:
            raise aiohttp.web.HTTPTemporaryRedirect(other_url + request.path)  # 307: a follower re-sends the body

        async with _serving(redirecting) as front_url, \
                ScreenshotClient(front_url, "sk_secret_key", retry_budget=0) as shots:
            try:
                await shots.screenshot(html="<p>private</p>", cookies=[{"name": "s", "value": "v"}])
            except ScreenshotError as error:
                assert (error.status, error.code) == (307, "redirected")
                assert error.details["location"] == other_url + "/v1/screenshot"
            else:
                raise AssertionError("no ScreenshotError")
    assert seen == []  # neither the key nor the body went to the other origin


async def test_an_error_page_echoing_the_key_does_not_put_it_in_the_error() -> None:
    async def echo(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=502, text=f"bad gateway; you sent {dict(request.headers)}")

    async with _serving(echo) as url, ScreenshotClient(url, "sk_secret_key", retry_budget=0) as shots:
        try:
            await shots.usage()
        except ScreenshotError as error:
            assert (error.status, error.code) == (502, "http_error")
            assert "bad gateway" in error.message and "[api key]" in error.message
            assert "sk_secret_key" not in f"{error} {error.message} {error!r}"
        else:
            raise AssertionError("no ScreenshotError")
