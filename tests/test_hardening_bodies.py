"""Hostile JSON bodies (Step 13, finding 4): a 400 naming what is wrong, never a 500 or a traceback.

Every case here is sent without a key: the body is judged before authentication
(the key may be inside it), so anyone on the network can send these.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from screenshot_service.api.body import parse_json_object
from screenshot_service.errors import MalformedBody
from screenshot_service.strict_json import MAX_DEPTH
from tests.conftest import Service

DEEP = b"[" * 100_000  # RecursionError in json.loads
LONG_INT = b'{"width": 1' + b"0" * 5000 + b"}"  # past the int digit limit
HUGE_FLOAT = b'{"delay": 1e999999}'  # parses to inf
LONG_FLOAT = b'{"device_scale_factor": 1.' + b"0" * 5000 + b"}"
NOT_A_NUMBER = b'{"quality": NaN}'  # a Python extension, not JSON
INFINITY = b'{"width": -Infinity}'
NESTED_FIELD = b'{"cookies": ' + b"[" * 200 + b"]" * 200 + b"}"  # deep, but under the recursion limit
DEEP_NUMBER_INSIDE = b'{"s3": {"bucket": "b", "region": 1' + b"9" * 400 + b"}}"
BARE_LONG_INT = b"1" * 5000


def _clean_log(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()
        assert "Traceback" not in record.getMessage()


async def _post(service: Service, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    # BytesIO: aiohttp warns (an error under filterwarnings) about large raw bytes bodies.
    response = await service.client.post(
        path, data=io.BytesIO(body), headers={"Content-Type": "application/json", "Content-Length": str(len(body))}
    )
    return response.status, (await response.json())["error"]


@pytest.mark.parametrize("path", ["/v1/screenshot", "/v1/jobs"])
@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (DEEP, "malformed_body", "nest"),
        (NESTED_FIELD, "malformed_body", "nest"),
        (BARE_LONG_INT, "malformed_body", "digits"),
        (LONG_INT, "invalid_parameter", "width"),
        (HUGE_FLOAT, "invalid_parameter", "delay"),
        (LONG_FLOAT, "invalid_parameter", "device_scale_factor"),
        (NOT_A_NUMBER, "invalid_parameter", "quality"),
        (INFINITY, "invalid_parameter", "width"),
        (DEEP_NUMBER_INSIDE, "invalid_parameter", "s3.region"),
    ],
    ids=["deep", "nested_field", "bare_long_int", "long_int", "huge_float", "long_float", "nan",
         "infinity", "inner_number"],
)
async def test_hostile_body_is_a_400_naming_the_problem(
    service: Service, caplog: pytest.LogCaptureFixture, path: str, body: bytes, code: str, named: str
) -> None:
    caplog.set_level(logging.DEBUG)
    status, error = await _post(service, path, body)
    assert status == 400, error
    assert error["code"] == code
    assert named in error["message"]
    if code == "invalid_parameter":
        assert named in error["details"]["fields"]
    _clean_log(caplog)


async def test_brackets_inside_strings_do_not_count_as_nesting(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    # A css string full of brackets and escaped quotes is fine: the body parses, and
    # without a key the next answer is the missing key.
    body = b'{"url": "http://example.com/", "css": "' + b'[{\\"' * 5000 + b'"}'
    status, error = await _post(service, "/v1/screenshot", body)
    assert (status, error["code"]) == (401, "missing_api_key")
    _clean_log(caplog)


async def test_oversized_body_is_413_before_it_is_read(service: Service) -> None:
    limit = service.settings.server.max_body_bytes
    status, error = await _post(service, "/v1/screenshot", b"[" * (limit + 1))
    assert (status, error["code"]) == (413, "payload_too_large")



def _nest(depth: int) -> str:
    """An object whose field ``x`` brings the whole body to ``depth`` levels."""
    return '{"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        (_nest(MAX_DEPTH), False),
        (_nest(MAX_DEPTH + 1), True),
        ('{"x": ' + "[[]" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}", True),  # peaks deeper than it ends
        ('{"x": [' + "[]," * 1000 + "[]]}", False),  # wide, not deep
        ('{"x": "' + "[{" * 1000 + '"}', False),  # brackets inside a string
    ],
)
def test_depth_limit_is_exact(text: str, too_deep: bool) -> None:
    if too_deep:
        with pytest.raises(MalformedBody, match="levels deep"):
            parse_json_object(text.encode())
    else:
        assert "x" in parse_json_object(text.encode())
