"""One declaration per option: README, OpenAPI and every request surface agree with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.capture.declaration import BODY, JOB, QUERY, Conflict, declared_options, option
from screenshot_service.capture.option_vocabulary import GROUPS, PAGE
from screenshot_service.capture.options import OPTIONS, accepted_at, refused_at
from screenshot_service.capture.parsers import boolean
from tests.conftest import Service

README = Path(__file__).resolve().parent.parent / "README.md"
# What each place refuses, written out so that a change to a declaration is a deliberate one.
REFUSED = {QUERY: {"html", "s3", "webhook_url", "proxy"}, BODY: {"webhook_url"}, JOB: {"s3"}}
REFUSAL = {QUERY: {"html": "only accepted in a POST JSON body", "s3": "only accepted in a POST JSON body",
                   "webhook_url": "only accepted on POST /v1/jobs", "proxy": "only accepted in a POST JSON body"},
           BODY: {"webhook_url": "only accepted on POST /v1/jobs"},
           JOB: {"s3": "not accepted on jobs; use POST /v1/screenshot"}}


def readme_option_rows() -> list[tuple[list[str], str]]:
    """(option names, default cell) of each row of README's option table."""
    table = README.read_text().split("### Capture options", 1)[1].split("###", 1)[0]
    rows = []
    for line in table.splitlines():
        if line.startswith("| `"):
            names_cell, default_cell = line.split("|")[1:3]
            rows.append(([n for n in names_cell.split("`")[1::2]], default_cell.strip()))
    return rows


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_readme_option_table_is_the_declarations() -> None:
    rows = readme_option_rows()
    names = [name for row_names, _ in rows for name in row_names]
    assert sorted(names) == sorted(OPTIONS), "one README row (or shared row) per declared option"
    for row_names, default_cell in rows:
        for name in row_names:
            default = OPTIONS[name].default
            if default not in (None, ()):
                assert shown(default) in default_cell, (name, default_cell)


def test_readme_names_every_declared_conflict() -> None:
    table = README.read_text().split("### Capture options", 1)[1].split("###", 1)[0]
    refused = " ".join(table.split("Refused combinations", 1)[1].split("\n\n", 1)[0].split())
    for spec in OPTIONS.values():
        for conflict in spec.conflicts:
            assert f"`{spec.name}`" in refused, spec.name
            others = [str(v) for v in conflict.values] if conflict.values else [f"`{conflict.other}`"]
            assert all(other in refused for other in others), (spec.name, conflict.other)
            if conflict.unless:
                assert "`{}={}`".format(*conflict.unless) in refused, conflict.unless


def test_each_place_refuses_what_its_declarations_say() -> None:
    for place, names in REFUSED.items():
        assert set(refused_at(place)) == names, place
        assert set(accepted_at(place)) == set(OPTIONS) - names, place


async def test_openapi_lists_the_options_each_operation_accepts(make_service: Any) -> None:
    service: Service = await make_service(jobs={"workers": 0})
    doc = await (await service.client.get("/v1/openapi.json")).json()
    paths = doc["paths"]
    query = {p["name"] for p in paths["/v1/screenshot"]["get"]["parameters"]} & set(OPTIONS)
    body = paths["/v1/screenshot"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    job = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    for place, listed in ((QUERY, query), (BODY, set(body) - {"api_key"}), (JOB, set(job) - {"api_key"})):
        assert listed == set(OPTIONS) - REFUSED[place], place
    for name in body:
        if name != "api_key":
            assert body[name]["description"] == OPTIONS[name].description, name
    assert job["response_type"]["enum"] == ["json"] and body["response_type"]["enum"] == ["json", "base64", "image"]
    assert body["media_type"] == {"type": "string", "enum": ["screen", "print"],
                                  "description": OPTIONS["media_type"].description}


async def test_each_request_surface_refuses_an_option_it_does_not_accept_by_name(make_service: Any) -> None:
    service: Service = await make_service(jobs={"workers": 0})
    target = service.site.url + "/paint"
    for place, refusals in REFUSAL.items():
        for name, why in refusals.items():
            value = "x"  # refused before its value is read
            if place == QUERY:
                response = await service.client.get("/v1/screenshot", params={"url": target, name: value},
                                                    headers=service.auth())
            else:
                path = "/v1/screenshot" if place == BODY else "/v1/jobs"
                response = await service.client.post(path, json={"url": target, name: value}, headers=service.auth())
            assert response.status == 400, (place, name)
            error = (await response.json())["error"]
            assert error["code"] == "invalid_parameter" and error["details"]["fields"] == {name: why}, (place, error)
    response = await service.client.post("/v1/jobs", json={"url": target, "response_type": "image"},
                                         headers=service.auth())
    assert response.status == 400
    assert (await response.json())["error"]["details"]["fields"] == {
        "response_type": "a job's result is always JSON; fetch the image from result.url"}


def test_an_option_table_refuses_an_incomplete_declaration_at_import() -> None:
    @dataclasses.dataclass(frozen=True)
    class Undeclared:
        flag: bool = False

    @dataclasses.dataclass(frozen=True)
    class UnknownConflict:
        flag: bool = option(False, boolean, PAGE, "a flag", conflicts=(Conflict("nope", "flag and nope"),))

    @dataclasses.dataclass(frozen=True)
    class UnknownGroup:
        flag: bool = option(False, boolean, "Nowhere", "a flag")

    with pytest.raises(TypeError, match=r"Undeclared\.flag must be declared with option"):
        declared_options(Undeclared, GROUPS)
    with pytest.raises(ValueError, match="unknown option"):
        declared_options(UnknownConflict, GROUPS)
    with pytest.raises(ValueError, match="group 'Nowhere'"):
        declared_options(UnknownGroup, GROUPS)
    with pytest.raises(ValueError, match="accepted"):
        option(False, boolean, PAGE, "a flag", accepted=frozenset({"email"}))
