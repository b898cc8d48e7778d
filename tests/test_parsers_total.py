"""Total parsers (issue #24, point 8): whatever a caller sends as an option, the answer is a
value or a 400 naming the field -- never a 500, never a traceback in the log.

Hypothesis drives every option the option table declares (a new option is
covered without editing this file): many examples straight into the parser and into
CaptureOptions, a few through the real app and its Chromium (GET query and POST JSON).
Derandomized and without an example database, so a run is fast and repeatable.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from screenshot_service.capture.declaration import QUERY
from screenshot_service.capture.options import OPTIONS as DECLARED
from screenshot_service.capture.options import CaptureOptions, refused_at
from screenshot_service.capture.parsers import Bad, BadFields, schema_of
from screenshot_service.errors import InvalidParameter
from tests.conftest import Service
from tests.option_values import json_texts, python_values, query_texts

OPTIONS = {name: spec.parse for name, spec in DECLARED.items()}
URL = "http://127.0.0.1:9/page"  # never fetched: the parsing tests stop before any capture
# The 5xx a capture of a valid request may end in (SPEC §4: the target, the caller's bucket or
# upstream proxy, the deadline, a busy or restarting browser); 500 internal_error is never one.
SERVER_SIDE_OUTCOMES = {"capture_timeout", "target_unreachable", "target_http_error", "storage_error", "overloaded",
                        "browser_unavailable", "proxy_error"}
_FAST = settings(derandomize=True, database=None, deadline=None, max_examples=20,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
# Every HTTP example sends all options, one request each: a few examples cover every option several times.
# Not shrunk: each step would be a capture; the failing example is reported as drawn.
_HTTP = settings(_FAST, max_examples=2, phases=[Phase.explicit, Phase.generate],
                 suppress_health_check=[*_FAST.suppress_health_check, HealthCheck.function_scoped_fixture])


def _names(fields: dict[str, str], name: str) -> bool:
    """Does an error's field list name ``name`` (or a field inside it, like ``s3.bucket``)?"""
    return any(field == name or field.startswith((f"{name}.", f"{name}[")) for field in fields)


def _base(name: str) -> dict[str, Any]:
    """The smallest request around one option: a url, unless the option is the page itself."""
    return {} if name in ("url", "html") else {"url": URL}


@pytest.mark.parametrize("name", sorted(OPTIONS))
@_FAST
@given(data=st.data())
def test_any_value_of_an_option_is_parsed_or_named(name: str, data: st.DataObject) -> None:
    """The parser alone (a JSON value or query text), then the whole option table around it."""
    schema = schema_of(OPTIONS[name])
    values = data.draw(st.lists(python_values(schema), min_size=1, max_size=5), label="values")
    texts = data.draw(st.lists(query_texts(schema), min_size=1, max_size=5), label="texts")
    for raw in values + texts:
        try:
            OPTIONS[name](raw)
        except BadFields as bad:  # a nested object (s3) names its own fields
            assert _names(bad.fields, name)
        except Bad as bad:
            assert str(bad)  # says what is wrong; the option table adds the field's name
    tries = [(CaptureOptions.from_json, value) for value in values] + [(CaptureOptions.from_query, t) for t in texts]
    for parse, raw in tries:
        try:
            parse({**_base(name), name: raw})
        except InvalidParameter as invalid:
            fields = invalid.details["fields"]
            assert fields and all(isinstance(why, str) and why for why in fields.values())
            # this option, or options it conflicts with (exclusive pairs, the pixel budget)
            assert _names(fields, name) or set(fields) <= set(OPTIONS), fields


def _assert_answered(status: int, body: Any, name: str | None, caplog: pytest.LogCaptureFixture) -> None:
    """2xx, or the §4 error shape with a code: a 4xx naming ``name`` when it is invalid_parameter, or
    one of the outcomes a real capture may end in.  The log holds no traceback and no error."""
    for record in caplog.records:
        assert record.exc_info is None and record.levelno < logging.ERROR, record.getMessage()
        assert "Traceback" not in record.getMessage()
    if 200 <= status < 300:
        return
    error = body["error"]
    assert error["status"] == status and error["message"], error
    assert status != 500 and error["code"] != "internal_error", error
    if error["code"] == "invalid_parameter" and name is not None:
        fields = error["details"]["fields"]
        assert _names(fields, name) or set(fields) <= set(OPTIONS) | {"url"}, error
    assert 400 <= status < 500 or error["code"] in SERVER_SIDE_OUTCOMES, error


async def _answer(response: Any) -> tuple[int, Any]:
    if response.content_type == "application/json":
        return response.status, await response.json()
    await response.read()
    return response.status, None


def _around(service: Service, name: str) -> dict[str, Any]:
    """One option's request: the test site's page, and a short deadline so waits stay short."""
    return {**({} if name in ("url", "html") else {"url": service.site.url + "/paint"}), "timeout": 3}


@_HTTP
@given(data=st.data())
async def test_any_query_value_of_any_option_is_answered_over_http(
    service: Service, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    caplog.set_level(logging.INFO)
    for name in sorted(OPTIONS):
        caplog.clear()
        params = {**_around(service, name), name: data.draw(query_texts(schema_of(OPTIONS[name])), label=name)}
        response = await service.client.get("/v1/screenshot", params=params, headers=service.auth())
        status, body = await _answer(response)
        if name in refused_at(QUERY):
            assert status == 400 and _names(body["error"]["details"]["fields"], name), body
        _assert_answered(status, body, name, caplog)


@_HTTP
@given(data=st.data())
async def test_any_json_value_of_any_option_is_answered_over_http(
    service: Service, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    caplog.set_level(logging.INFO)
    for name in sorted(OPTIONS):
        caplog.clear()
        text = data.draw(json_texts(schema_of(OPTIONS[name])), label=name)
        fields = [f'"{key}": {json.dumps(value)}' for key, value in _around(service, name).items() if key != name]
        raw = ("{" + ", ".join([*fields, f'"{name}": {text}']) + "}").encode("utf-8")
        response = await service.client.post(
            "/v1/screenshot", data=io.BytesIO(raw),
            headers={**service.auth(), "Content-Type": "application/json", "Content-Length": str(len(raw))},
        )
        status, body = await _answer(response)
        _assert_answered(status, body, name, caplog)
