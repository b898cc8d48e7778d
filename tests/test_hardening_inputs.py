"""The security review's malformed inputs (issue #24, point 8): each is a 4xx naming what is wrong,
never a 500 -- option values, API keys in every place a key travels, signed-link parameters,
and a query name given twice (which the service refuses, signed link or not).

Keys that are not text (bytes no UTF-8 decoder takes) are sent over a raw socket: an HTTP
client would refuse to write them, a hostile caller does not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from screenshot_service.limits.quota import current_period
from screenshot_service.signing import canonical_query, sign, signed_url
from tests.conftest import Service
from tests.option_values import LONG_DIGITS, NUMERALS, URL_TEXT

# Bytes HTTP forbids in a header value (controls but tab): aiohttp's parser refuses the request
# before the service sees it, which is not a key's matter.
_CONTROLS = set(range(0x20)) - {0x09} | {0x7F}


def _clean_log(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None and record.levelno < logging.ERROR, record.getMessage()


async def _error(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status, (await response.json())["error"]


async def _raw(service: Service, head: bytes, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send ``head`` (request line and headers, CRLF-separated) as written; the status and error."""
    server = service.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head + b"\r\nHost: localhost\r\nConnection: close\r\n" + length + b"\r\n" + body)
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    head, _, payload = rest.partition(b"\r\n\r\n")
    if b"application/json" not in head.lower():
        return int(status_line.split()[1]), {}
    return int(status_line.split()[1]), json.loads(payload)["error"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("width", "--5"), ("width", "²"), ("width", "١٢٠٠"), ("width", "9" * 5000), ("delay", "-" + "9" * 5000),
     ("device_scale_factor", "1" * 5000), ("device_scale_factor", "1_0"), ("clip", "1,2,3,--4"),
     ("clip", "0,0,100," + "9" * 5000), ("geolocation", "1e999,2"), ("headers", "[" * 1100 + "]" * 1100),
     ("headers", '{"X-A\\n": "1"}'), ("cookies", '[{"name": "a", "value": "b", "expires": 1' + "0" * 400 + "}]"),
     ("cookies", '[{"name": "a", "value": "b", "expires": 1e308}]')],
    ids=lambda value: value[:12],
)
async def test_a_malformed_query_value_is_a_400_naming_it(
    service: Service, caplog: pytest.LogCaptureFixture, name: str, value: str
) -> None:
    caplog.set_level(logging.INFO)
    params = {"url": service.site.url + "/paint", name: value}
    status, error = await _error(await service.client.get("/v1/screenshot", params=params, headers=service.auth()))
    assert (status, error["code"]) == (400, "invalid_parameter"), error
    assert name in error["details"]["fields"] and len(error["message"]) < 2000
    _clean_log(caplog)


@pytest.mark.parametrize("path", ["/v1/screenshot", "/v1/jobs"])
@pytest.mark.parametrize("field", ["html", "url", "css", "api_key", "headers"])
async def test_a_lone_surrogate_escape_in_a_json_body_is_malformed(
    service: Service, caplog: pytest.LogCaptureFixture, path: str, field: str
) -> None:
    caplog.set_level(logging.INFO)
    value = '{"X-A": "\\ud800"}' if field == "headers" else '"a\\ud800b"'
    body = ('{"url": "http://a\\udfff.test/"}' if field == "url"
            else f'{{"url": "{service.site.url}", "{field}": {value}}}').encode()
    for headers in ({}, service.auth()):  # judged before the key is known, and after
        status, error = await _error(await service.client.post(
            path, data=body, headers={**headers, "Content-Type": "application/json"}))
        assert (status, error["code"]) == (400, "malformed_body"), error
        assert "surrogate" in error["message"]
    _clean_log(caplog)


@pytest.mark.parametrize(
    "head",
    [b"GET /v1/usage HTTP/1.1\r\nX-API-Key: sk_\xff\xfe", b"GET /v1/usage HTTP/1.1\r\nX-API-Key: sk_\xc3\xa9t\xc3\xa9",
     b"GET /v1/usage HTTP/1.1\r\nAuthorization: Bearer \xed\xa0\x80", b"GET /v1/usage?api_key=sk_%C3%A9 HTTP/1.1",
     b"GET /v1/usage?api_key=sk_%ED%A0%80 HTTP/1.1", b"GET /v1/usage HTTP/1.1\r\nX-API-Key: " + b"k" * 4000],
    ids=["x-api-key-bytes", "x-api-key-utf8", "bearer-surrogate-bytes", "query-utf8", "query-bad-utf8", "long"],
)
async def test_a_key_that_is_not_printable_ascii_is_401_invalid_api_key(
    service: Service, caplog: pytest.LogCaptureFixture, head: bytes
) -> None:
    caplog.set_level(logging.INFO)
    status, error = await _raw(service, head)
    assert (status, error["code"]) == (401, "invalid_api_key"), error
    _clean_log(caplog)


@pytest.mark.parametrize("api_key", [5, ["sk_x"], {"k": "v"}, True, "sk_\u00e9", "sk_\x00"])
async def test_a_body_api_key_that_is_not_a_key_is_401(service: Service, api_key: Any) -> None:
    body = {"url": service.site.url + "/paint", "api_key": api_key}
    status, error = await _error(await service.client.post("/v1/screenshot", json=body))
    assert (status, error["code"]) == (401, "invalid_api_key"), error


@settings(derandomize=True, database=None, deadline=None, max_examples=40, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=st.binary(min_size=1, max_size=40).filter(lambda raw: not set(raw) & _CONTROLS),
       header=st.sampled_from([b"X-API-Key: ", b"Authorization: Bearer "]))
async def test_any_bytes_as_a_key_header_are_401(
    service: Service, caplog: pytest.LogCaptureFixture, key: bytes, header: bytes
) -> None:
    caplog.clear()
    status, error = await _raw(service, b"GET /v1/usage HTTP/1.1\r\n" + header + key)
    assert status == 401 and error["code"] in ("invalid_api_key", "missing_api_key"), error
    _clean_log(caplog)


async def test_a_name_given_twice_is_a_400_naming_it(service: Service) -> None:
    url = service.site.url + "/paint"
    visits = service.site.log.count("/paint")
    cases = [([("url", url), ("width", "800"), ("width", "1200")], "width"),
             ([("url", url), ("url", url)], "url"),
             ([("url", url), ("api_key", service.key), ("api_key", service.key)], "api_key")]
    for query, name in cases:
        status, error = await _error(await service.client.get("/v1/screenshot", params=query, headers=service.auth()))
        assert (status, error["code"]) == (400, "invalid_parameter"), error
        assert set(error["details"]["fields"]) == {name}
    status, error = await _error(await service.client.get("/v1/usage", params=[("api_key", "a"), ("api_key", "b")]))
    assert status == 400 and set(error["details"]["fields"]) == {"api_key"}
    assert service.site.log.count("/paint") == visits


async def test_a_signed_link_with_a_name_given_twice_is_refused(service: Service) -> None:
    """The signature covers both values; honouring either would run a capture nobody signed as such."""
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    base = str(service.client.make_url("")).rstrip("/")
    link = signed_url(base, service.key_id, record.signing_secret, service.site.url + "/paint", width=800)
    # signing.py signs whatever pairs it is given: here width twice, as a careless signer could
    params = [("url", service.site.url + "/paint"), ("key_id", service.key_id), ("width", "800"), ("width", "1200")]
    forged = f"{base}/v1/screenshot?{canonical_query(params)}&signature={sign(record.signing_secret, params)}"
    status, error = await _error(await service.client.get(forged.removeprefix(base)))
    assert (status, error["code"]) == (400, "invalid_parameter"), error
    assert set(error["details"]["fields"]) == {"width"}
    assert await service.state.credits_used(service.key_id, current_period().name) == 0
    assert (await service.client.get(link.removeprefix(base))).status == 200  # the plain link still works


async def test_a_signed_expires_of_thousands_of_digits_names_expires(service: Service) -> None:
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    base = str(service.client.make_url("")).rstrip("/")
    link = signed_url(base, service.key_id, record.signing_secret, service.site.url + "/paint", expires="9" * 5000)
    status, error = await _error(await service.client.get(link.removeprefix(base)))
    assert (status, error["code"]) == (400, "invalid_parameter"), error
    assert set(error["details"]["fields"]) == {"expires"}


@pytest.mark.parametrize("target", ["http://" + "1" * 5000 + "/", "http://a.test:" + "0" * 5000 + "99999/",
                                    "http://[::1/", "http://0x" + "f" * 3000 + "/"])
async def test_a_url_that_splits_badly_is_invalid_url(service: Service, target: str) -> None:
    body = {"url": target}
    status, error = await _error(await service.client.post("/v1/screenshot", json=body, headers=service.auth()))
    assert (status, error["code"]) == (400, "invalid_url"), error


async def test_job_inputs_outside_the_body(service: Service) -> None:
    """Idempotency-Key and a job id come from the header and the path: any text is a 400 or a 404."""
    body = json.dumps({"url": service.site.url + "/paint"}).encode()
    for key in (b"\xff\xfe", "é".encode(), b"k" * 300):
        head = b"POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\nIdempotency-Key: " + key
        status, error = await _raw(service, head + b"\r\nX-API-Key: " + service.key.encode(), body)
        assert status == 400 and "Idempotency-Key" in error["details"]["fields"], error
    for job_id in ("job_%ED%A0%80", "job_" + "0" * 24 + "%0A", "%00", "x" * 2000):
        status, error = await _error(await service.client.get(f"/v1/jobs/{job_id}", headers=service.auth()))
        assert (status, error["code"]) == (404, "not_found"), error


@pytest.mark.parametrize("field", ["bucket", "region", "access_key_id", "secret_access_key"])
async def test_an_s3_field_with_a_trailing_newline_is_named(service: Service, field: str) -> None:
    """'$' matches before a final newline: "bucket\\n" once passed a pattern meant to refuse it."""
    s3 = {"bucket": "my-bucket", "region": "eu-west-1", "access_key_id": "AKIA", "secret_access_key": "secret"}
    s3[field] += "\n"
    body = {"url": service.site.url + "/paint", "s3": s3}
    visits = service.site.log.count("/paint")
    status, error = await _error(await service.client.post("/v1/screenshot", json=body, headers=service.auth()))
    assert (status, error["code"]) == (400, "invalid_parameter"), error
    assert set(error["details"]["fields"]) == {f"s3.{field}"}
    assert service.site.log.count("/paint") == visits


async def test_a_name_given_twice_in_a_json_body_is_malformed(service: Service) -> None:
    """As in a query: {"width": 800, "width": 1200} has no one meaning (json.loads keeps the last)."""
    bodies = [('{"url": "%s", "width": 800, "width": 1200}', "width"),
              ('{"url": "%s", "cookies": [{"name": "a", "value": "b", "value": "c"}]}', "value")]
    for text, name in bodies:
        body = (text % service.site.url).encode()
        for path in ("/v1/screenshot", "/v1/jobs"):
            response = await service.client.post(
                path, data=body, headers={**service.auth(), "Content-Type": "application/json"})
            status, error = await _error(response)
            assert (status, error["code"]) == (400, "malformed_body"), error
            assert error["details"]["repeated"] == name and name in error["message"]


_LINK_TEXT = URL_TEXT | NUMERALS


_QUICK = settings(derandomize=True, database=None, deadline=None, max_examples=20,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_QUICK
@given(key_id=_LINK_TEXT, signature=_LINK_TEXT, expires=st.none() | _LINK_TEXT | LONG_DIGITS,
       job_id=URL_TEXT.filter(lambda text: "/" not in text and text not in ("", ".", "..")))
async def test_forged_link_parameters_and_any_job_id_are_answered(
    service: Service, caplog: pytest.LogCaptureFixture, key_id: str, signature: str, expires: str | None, job_id: str
) -> None:
    """A link with any key_id, signature and expires is a 400 naming one of them or a 401; any job id is a 404."""
    caplog.clear()
    params = [("url", service.site.url + "/paint"), ("key_id", key_id), ("signature", signature)]
    params += [] if expires is None else [("expires", expires)]
    status, error = await _error(await service.client.get("/v1/screenshot", params=params))
    assert status in (400, 401), error
    if status == 400:
        assert error["code"] == "invalid_parameter" and set(error["details"]["fields"]) <= {"key_id", "expires"}
    else:
        assert error["code"] == "invalid_signature", error
    status, error = await _error(await service.client.get(f"/v1/jobs/{quote(job_id)}", headers=service.auth()))
    assert (status, error["code"]) == (404, "not_found"), error
    _clean_log(caplog)


@_QUICK
@given(expires=_LINK_TEXT | LONG_DIGITS)
async def test_a_correctly_signed_link_with_any_expires_is_answered(
    service: Service, caplog: pytest.LogCaptureFixture, expires: str
) -> None:
    """Signed by the key's own secret: a capture (a future expiry), 401 signature_expired, or a 400 naming expires."""
    caplog.clear()
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    params = [("url", service.site.url + "/paint"), ("key_id", service.key_id), ("expires", expires)]
    params.append(("signature", sign(record.signing_secret, params)))
    response = await service.client.get("/v1/screenshot", params=params)
    if response.status == 200:
        assert response.content_type == "image/png"
    else:
        status, error = await _error(response)
        assert (status, error["code"]) in ((401, "signature_expired"), (400, "invalid_parameter")), error
        assert status == 401 or set(error["details"]["fields"]) == {"expires"}
    _clean_log(caplog)
