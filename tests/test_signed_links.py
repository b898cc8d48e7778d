"""Signed links (README "Signed links"): an <img src> that carries key_id + signature, no API key.

Every request goes over real HTTP to the in-process service, as a browser's
<img> would send it; the links are made by the README's own snippets (Python
always, JavaScript when node is installed), by the CLI and by signing.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest

from screenshot_service.capture.declaration import SIGNED_LINK
from screenshot_service.capture.options import refused_at
from screenshot_service.limits.quota import current_period
from screenshot_service.signing import canonical_query, sign, signed_url, verify
from tests.conftest import Service, image_of, wait_for
from tests.site import PAINT_RGB, held_back

README = Path(__file__).resolve().parents[1] / "README.md"
CLI = [sys.executable, "-m", "screenshot_service"]


def readme_snippet(marker: str, language: str) -> str:
    """The fenced block right after ``<!-- marker -->`` in README.md: what users copy."""
    text = README.read_text()
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```{language}\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no {language} block after <!-- {marker} -->"
    return found.group(1)


def readme_signed_link() -> Any:
    namespace: dict[str, Any] = {}
    exec(readme_snippet("signed-link-python", "python"), namespace)  # the README's code, as printed
    return namespace["signed_link"]


async def secret_of(service: Service) -> str:
    record = await service.state.key_by_id(service.key_id)
    assert record is not None and record.signing_secret.startswith("sign_")
    assert record.signing_secret != record.webhook_secret
    return record.signing_secret


def base(service: Service) -> str:
    return str(service.client.make_url("")).rstrip("/")


async def fetch(link: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    """GET the link as a browser's <img> would: a plain request, no key."""
    async with aiohttp.ClientSession() as session, session.get(link, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


def error_of(body: bytes) -> dict[str, Any]:
    return dict(json.loads(body)["error"])


async def used(service: Service) -> int:
    return await service.state.credits_used(service.key_id, current_period().name)


def tamper(link: str, name: str, value: str) -> str:
    parts = urlsplit(link)
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return parts._replace(query=urlencode(query)).geturl()


# the canonical text --------------------------------------------------------------------
def test_canonical_query_is_sorted_rfc3986_and_skips_the_signature() -> None:
    params = [("width", "800"), ("url", "https://e.com/a b?x=1&y=é~"), ("key_id", "key_1"),
              ("signature", "ignored"), ("hide_selectors", ".b"), ("hide_selectors", ".a")]
    assert canonical_query(params) == (
        "hide_selectors=.a&hide_selectors=.b&key_id=key_1"
        "&url=https%3A%2F%2Fe.com%2Fa%20b%3Fx%3D1%26y%3D%C3%A9~&width=800"
    )
    assert canonical_query(dict(params)) == canonical_query([p for p in params if p[1] != ".b"])
    signature = sign("secret", params)
    assert re.fullmatch(r"[0-9a-f]{64}", signature)
    assert verify("secret", params, signature) and verify("secret", params[::-1], signature)
    assert not verify("other", params, signature)
    assert not verify("secret", params, signature.upper()) and not verify("secret", params, "é" * 64)


def test_readme_python_snippet_makes_the_same_link_as_signing_py() -> None:
    made = readme_signed_link()("http://h:1/", "key_1", "sign_x", "https://example.com/?q=a b",
                                width=800, full_page=True, css="p{color:red}")
    assert made == signed_url("http://h:1", "key_1", "sign_x", "https://example.com/?q=a b",
                              width=800, full_page=True, css="p{color:red}")


# the service ---------------------------------------------------------------------------
async def test_readme_python_link_returns_the_image_and_charges_the_key(service: Service) -> None:
    link = readme_signed_link()(base(service), service.key_id, await secret_of(service),
                                service.site.url + "/paint", expires_in=300, width=400, height=300)
    status, headers, body = await fetch(link)
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "image/png"  # a signed link's response_type defaults to image
    image = image_of(body)
    assert image.size == (400, 300) and image.convert("RGB").getpixel((200, 150)) == PAINT_RGB
    assert headers["X-RateLimit-Limit"]  # the key's request, with the key's rate headers
    assert await used(service) == 1


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_readme_javascript_link_returns_the_image(service: Service, tmp_path: Path) -> None:
    script = tmp_path / "sign.mjs"
    script.write_text(readme_snippet("signed-link-javascript", "javascript") + (
        f"console.log(await signedLink({json.dumps(base(service))}, {json.dumps(service.key_id)}, "
        f"{json.dumps(await secret_of(service))}, {json.dumps(service.site.url + '/paint?a=b c')}, "
        "{ expiresIn: 300, width: 300, height: 200, hide_selectors: ['#x', '.y'], full_page: false }));\n"
    ))
    process = await asyncio.create_subprocess_exec("node", str(script), stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    link = out.decode().strip()
    # the same canonical text as Python's, so the same signature
    assert link.split("&signature=")[1] == sign(await secret_of(service), parse_qsl(urlsplit(link).query))
    status, _, body = await fetch(link)
    assert status == 200, body[:300]
    assert image_of(body).size == (300, 200)


async def test_a_link_for_json_answers_json(service: Service) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint",
                      response_type="json")
    status, _, body = await fetch(link)
    assert status == 200 and json.loads(body)["format"] == "png"


async def test_tampered_links_are_401_invalid_signature(service: Service) -> None:
    secret = await secret_of(service)
    link = signed_url(base(service), service.key_id, secret, service.site.url + "/paint", width=400)
    cases = {
        "width changed": tamper(link, "width", "800"),
        "url changed": tamper(link, "url", service.site.url + "/tall"),
        "option added": link + "&full_page=true",
        "signature changed": tamper(link, "signature", "0" * 64),
        "signature missing": link.split("&signature=")[0],
        "signature empty": tamper(link, "signature", ""),
        "another key's id": signed_url(base(service), "key_00000000", secret, service.site.url + "/paint"),
        "another secret": signed_url(base(service), service.key_id, "sign_guess", service.site.url + "/paint"),
        "the empty secret": signed_url(base(service), service.key_id, "", service.site.url + "/paint"),
        "the webhook secret": signed_url(base(service), service.key_id,
                                         (await service.state.key_by_id(service.key_id)).webhook_secret,  # type: ignore[union-attr]
                                         service.site.url + "/paint"),
    }
    for case, bad in cases.items():
        status, _, body = await fetch(bad)
        assert status == 401, case
        assert error_of(body)["code"] == "invalid_signature", case
    assert await used(service) == 0
    assert (await fetch(link))[0] == 200  # the untouched link still works


async def test_a_revoked_keys_links_stop_working(service: Service) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint")
    assert await service.state.revoke_key(service.key_id)
    status, _, body = await fetch(link)
    assert status == 401 and error_of(body)["code"] == "invalid_signature"


async def test_expired_links_are_401_signature_expired(service: Service) -> None:
    secret = await secret_of(service)
    expired = signed_url(base(service), service.key_id, secret, service.site.url + "/paint", expires_in=-5)
    status, _, body = await fetch(expired)
    error = error_of(body)
    assert status == 401 and error["code"] == "signature_expired"
    assert error["details"]["expires"] < time.time()
    # pushing expires forward breaks the signature instead
    status, _, body = await fetch(tamper(expired, "expires", str(int(time.time()) + 3600)))
    assert status == 401 and error_of(body)["code"] == "invalid_signature"
    # a malformed expires, correctly signed, names the field
    bad = signed_url(base(service), service.key_id, secret, service.site.url + "/paint", expires="soon")
    status, _, body = await fetch(bad)
    assert status == 400 and "expires" in error_of(body)["details"]["fields"]


async def test_an_api_key_and_a_signature_together_are_400(service: Service) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint")
    attempts = [(link + "&api_key=" + service.key, {}), (link, service.auth()), (link, {"X-API-Key": service.key})]
    for target, headers in attempts:
        status, _, body = await fetch(target, headers=headers)
        error = error_of(body)
        assert status == 400 and error["code"] == "invalid_parameter", headers
        assert set(error["details"]["fields"]) == {"api_key", "signature"}
    status, _, body = await fetch(f"{base(service)}/v1/screenshot?url=x&signature={'0' * 64}")
    assert status == 400 and "key_id" in error_of(body)["details"]["fields"]


REFUSED_ON_LINKS = {"headers": '{"X-A":"1"}', "cookies": '[{"name":"a","value":"b"}]', "html": "<p>hi</p>",
                    "s3": '{"bucket":"b"}', "webhook_url": "https://hooks.example.com/x",
                    "proxy": "http://user:pass@proxy.example:3128",
                    "compare_to": "previous", "diff_threshold": "0.2"}


def test_what_a_signed_link_may_not_carry_is_declared_with_the_options() -> None:
    assert set(refused_at(SIGNED_LINK)) == set(REFUSED_ON_LINKS)


@pytest.mark.parametrize("name,value", REFUSED_ON_LINKS.items())
async def test_a_signed_link_may_not_carry(service: Service, name: str, value: str) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint",
                      **{name: value})
    status, _, body = await fetch(link)
    error = error_of(body)
    assert status == 400 and error["code"] == "invalid_parameter"
    assert error["details"]["fields"] == {name: "not allowed on a signed link"}


async def test_bad_options_on_a_signed_link_name_the_field(service: Service) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint",
                      width=5, colour="red")
    status, _, body = await fetch(link)
    fields = error_of(body)["details"]["fields"]
    assert status == 400 and set(fields) == {"width", "colour"}


async def test_signed_links_count_against_the_keys_rate(make_service: Any) -> None:
    service: Service = await make_service(plan="free")  # 1 request/s, burst 1
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint")
    answers = await asyncio.gather(*(fetch(link) for _ in range(3)))
    assert sorted(status for status, _, _ in answers) == [200, 429, 429]
    refused = [a for a in answers if a[0] == 429]
    assert all(error_of(body)["code"] == "rate_limited" and "Retry-After" in h for _, h, body in refused)
    assert await used(service) == 1


async def test_signed_links_count_against_the_keys_concurrency(make_service: Any) -> None:
    service: Service = await make_service(
        plan="single", plans={"single": {"requests_per_second": 100, "burst": 100, "concurrency": 1}}
    )
    seen = service.site.log.count("/slow")
    with held_back() as gate:  # a keyed capture holds the key's one slot until the block ends
        slow = asyncio.ensure_future(service.shot(f"/slow?gate={gate}"))
        assert await wait_for(lambda: service.site.log.count("/slow") > seen, 30)
        link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint")
        status, headers, body = await fetch(link)
        assert status == 429 and error_of(body)["code"] == "concurrency_limited" and "Retry-After" in headers
        assert not slow.done()
    assert (await slow).status == 200


async def test_a_hotlinked_cached_image_is_rendered_and_charged_once(service: Service) -> None:
    link = signed_url(base(service), service.key_id, await secret_of(service), service.site.url + "/paint",
                      cache=True, cache_ttl=600)
    seen = service.site.log.count("/paint")
    first = await fetch(link)
    second = await fetch(link)
    assert first[0] == second[0] == 200
    assert first[2] == second[2]  # the same bytes
    assert first[1]["X-Cache"] == "MISS" and second[1]["X-Cache"] == "HIT"
    assert service.site.log.count("/paint") == seen + 1  # one render
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    assert usage["quota"]["used"] == 1  # one charge


async def test_cli_keys_sign_prints_a_link_that_returns_the_image(service: Service) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI, "keys", "sign", service.key_id, "--url", service.site.url + "/paint", "--expires-in", "300",
        "--base", base(service), "width=320", "height=240",
        env={**os.environ, "SCREENSHOT_STATE_SQLITE_PATH": service.settings.state.sqlite.path},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    link = out.decode().strip().splitlines()[-1]
    status, _, body = await fetch(link)
    assert status == 200, body[:300]
    assert image_of(body).size == (320, 240)
    status, _, body = await fetch(tamper(link, "height", "241"))
    assert status == 401 and error_of(body)["code"] == "invalid_signature"



async def test_openapi_lists_the_signed_link_parameters_and_errors(service: Service) -> None:
    doc = await (await service.client.get("/v1/openapi.json")).json()
    get = doc["paths"]["/v1/screenshot"]["get"]
    assert {"key_id", "expires", "signature"} <= {p["name"] for p in get["parameters"]}
    assert "invalid_signature" in get["responses"]["401"]["description"]
    assert "signature_expired" in get["responses"]["401"]["description"]
