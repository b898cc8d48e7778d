"""compare_to and diff_threshold end to end (SPEC §3.3): pixels decide.

A test-site page (tests/scene_site.py) is repainted by the test between captures; what the
caller sees is the result's ``id``, ``captured_at``, ``diff`` and warnings, and the pixels of
the stored marked image."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from screenshot_service import config_loading
from screenshot_service.limits.keys import create_key
from tests.conftest import Service, image_of, wait_for
from tests.jobs_helpers import JobsApp, poll_until_done, settings_for, start_app
from tests.scene_site import SCENES, Scene

if TYPE_CHECKING:
    from screenshot_service.browser.pool import BrowserPool
    from tests.conftest import TestSite
    from tests.redis_server import RedisTestServer

SIZE = {"width": 400, "height": 300}
_names = itertools.count()


def new_scene(**look: Any) -> str:
    name = f"scene{next(_names)}"
    SCENES[name] = Scene(**look)
    return name


async def shoot(service: Service | JobsApp, scene: str, *, key: str | None = None, status: int = 200,
                **options: Any) -> Any:
    body = {"url": f"{service.site.url}/scene?name={scene}", **SIZE, **options}
    response = await service.client.post("/v1/screenshot", json=body,
                                         headers={"Authorization": f"Bearer {key or service.key}"})
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def stored_image(service: Service, url: str) -> Any:
    response = await service.client.get(urlsplit(url).path)
    assert response.status == 200
    return image_of(await response.read()).convert("RGB")


def codes(result: dict[str, Any]) -> list[str]:
    return [w["code"] for w in result["warnings"]]


async def test_every_result_has_an_id_and_the_first_comparison_has_no_baseline(service: Service) -> None:
    scene = new_scene()
    plain = await shoot(service, scene)
    assert plain["id"].startswith("cap_") and len(plain["id"]) >= 20
    assert plain["captured_at"].endswith("Z") and "diff" not in plain
    first = await shoot(service, new_scene(), compare_to="previous")
    assert first["diff"] is None and "no_baseline" in codes(first)
    assert first["id"] != plain["id"]


async def test_identical_captures_differ_by_nothing(service: Service) -> None:
    scene = new_scene(box=(50, 60, 100, 80))
    first = await shoot(service, scene)
    second = await shoot(service, scene, compare_to="previous")
    diff = second["diff"]
    assert diff["baseline"] == {"id": first["id"], "captured_at": first["captured_at"]}
    assert (diff["changed_pixels"], diff["changed_ratio"], diff["regions"]) == (0, 0, [])
    assert "size_changed" not in diff and "no_baseline" not in codes(second)
    assert diff["image_url"] == second["url"]  # nothing to mark: the capture itself


async def test_a_changed_box_is_found_counted_and_marked_red(service: Service) -> None:
    scene = new_scene(box=(50, 60, 100, 80), box_colour=(0, 90, 200))
    await shoot(service, scene)
    SCENES[scene].box_colour = (250, 200, 0)
    second = await shoot(service, scene, compare_to="previous")
    diff = second["diff"]
    assert diff["changed_pixels"] == 100 * 80
    assert diff["changed_ratio"] == 100 * 80 / (400 * 300)
    assert diff["regions"] == [{"x": 50, "y": 60, "width": 100, "height": 80}]
    marked = await stored_image(service, diff["image_url"])
    assert marked.size == (400, 300)
    assert marked.getpixel((100, 100)) == (255, 0, 0)  # changed: red
    for outside in ((10, 150), (300, 250), (49, 100), (150, 100)):
        r, g, b = marked.getpixel(outside)
        assert r == g == b, outside  # unchanged: grey
    metrics = (await (await service.client.get("/metrics")).text()).splitlines()
    assert "screenshot_visual_diff_changed_ratio_count 1.0" in metrics  # one diff computed
    assert "screenshot_visual_diff_changed_ratio_bucket{le=\"0.05\"} 0.0" in metrics  # of 6.7 %
    assert "screenshot_visual_diff_changed_ratio_bucket{le=\"0.1\"} 1.0" in metrics


async def test_a_threshold_above_the_change_counts_nothing(service: Service) -> None:
    scene = new_scene(box=(0, 100, 400, 100), box_colour=(100, 100, 100))
    await shoot(service, scene)
    SCENES[scene].box_colour = (104, 104, 104)  # YIQ distance 8.1 of 35215: under 0.1's 352, over 0.01's 3.5
    loose = await shoot(service, scene, compare_to="previous")
    assert loose["diff"]["changed_pixels"] == 0
    strict = await shoot(service, scene, compare_to=loose["id"], diff_threshold=0)
    assert strict["diff"]["changed_pixels"] == 0  # the same picture as the one it names
    SCENES[scene].box_colour = (100, 100, 100)
    back = await shoot(service, scene, compare_to=loose["id"], diff_threshold=0.01)
    assert back["diff"]["changed_pixels"] == 400 * 100


async def test_a_taller_page_compares_the_common_area(service: Service) -> None:
    scene = new_scene(height=400)
    first = await shoot(service, scene, full_page=True)
    SCENES[scene].height = 500
    SCENES[scene].box = (0, 350, 400, 150)
    second = await shoot(service, scene, full_page=True, compare_to="previous")
    assert (first["height"], second["height"]) == (400, 500)
    diff = second["diff"]
    assert diff["size_changed"] is True
    assert diff["changed_pixels"] == 400 * 50  # the box's part inside the first 400 rows
    assert diff["changed_ratio"] == 400 * 50 / (400 * 400)
    assert diff["regions"] == [{"x": 0, "y": 350, "width": 400, "height": 50}]


async def test_blank_and_error_captures_never_become_the_previous_baseline(service: Service) -> None:
    scene = new_scene(box=(10, 40, 30, 30))
    good = await shoot(service, scene)
    SCENES[scene].blank = True
    blank = await shoot(service, scene, compare_to="previous")
    assert "blank_capture" in codes(blank) and blank["diff"]["baseline"]["id"] == good["id"]
    SCENES[scene].blank, SCENES[scene].status = False, 500
    failed = await shoot(service, scene, compare_to="previous")
    assert "http_error" in codes(failed) and failed["diff"]["baseline"]["id"] == good["id"]
    SCENES[scene].status = 200
    again = await shoot(service, scene, compare_to="previous")
    assert again["diff"]["baseline"]["id"] == good["id"] and again["diff"]["changed_pixels"] == 0
    # Naming a bad capture by id is the caller's choice.
    named = await shoot(service, scene, compare_to=blank["id"])
    assert named["diff"]["baseline"]["id"] == blank["id"] and named["diff"]["changed_pixels"] > 0


async def test_a_key_never_sees_another_keys_captures(service: Service) -> None:
    scene = new_scene()
    mine = await shoot(service, scene)
    _, other = await create_key(service.state, "unlimited", "other")
    theirs = await shoot(service, scene, key=other, compare_to=mine["id"], status=400)
    unknown = await shoot(service, scene, compare_to="cap_" + "A" * 24, status=400)
    assert theirs["error"]["code"] == "invalid_parameter"
    assert theirs["error"]["details"]["fields"] == unknown["error"]["details"]["fields"]  # existence not told
    assert set(theirs["error"]["details"]["fields"]) == {"compare_to"}
    fresh = await shoot(service, scene, key=other, compare_to="previous")
    assert fresh["diff"] is None and "no_baseline" in codes(fresh)


async def test_what_cannot_be_compared_is_refused(service: Service) -> None:
    scene = new_scene()
    pdf = await shoot(service, scene, format="pdf", compare_to="previous", status=400)
    assert {"compare_to", "format"} <= set(pdf["error"]["details"]["fields"])
    text = await shoot(service, scene, format="text", diff_threshold=0.2, status=400)
    assert "diff_threshold" in text["error"]["details"]["fields"]
    for bad, named in (({"compare_to": "yesterday"}, "compare_to"),
                       ({"compare_to": "previous", "diff_threshold": 1.5}, "diff_threshold")):
        refused = await shoot(service, scene, status=400, **bad)
        assert set(refused["error"]["details"]["fields"]) == {named}
    pdf_capture = await shoot(service, scene, format="pdf")
    named_pdf = await shoot(service, scene, compare_to=pdf_capture["id"], status=400)
    assert "pdf" in named_pdf["error"]["details"]["fields"]["compare_to"]


async def test_an_image_answer_carries_the_identity_and_the_diff_in_headers(service: Service) -> None:
    scene = new_scene()
    first = await shoot(service, scene)
    response = await service.shot(f"/scene?name={scene}", compare_to=first["id"], response_type="image", **SIZE)
    assert response.status == 200 and response.headers["X-Capture-Id"].startswith("cap_")
    assert response.headers["X-Captured-At"].endswith("Z")
    assert response.headers["X-Diff-Changed-Ratio"] == "0.0"
    assert response.headers["X-Diff-Changed-Pixels"] == "0"
    assert response.headers["X-Diff-Baseline-Id"] == first["id"]
    assert "X-Diff-Size-Changed" not in response.headers
    assert "/v1/files/" in response.headers["X-Diff-Image-Url"]
    taller = await service.shot(f"/scene?name={scene}", compare_to=first["id"], response_type="image",
                                width=SIZE["width"], height=SIZE["height"] + 20)
    assert taller.status == 200 and taller.headers["X-Diff-Size-Changed"] == "true"


async def test_a_cached_answer_is_the_original_capture_and_compare_to_skips_the_cache(service: Service) -> None:
    scene = new_scene()
    first = await shoot(service, scene, cache=True)
    hit = await shoot(service, scene, cache=True)
    assert hit["cached"] and (hit["id"], hit["captured_at"]) == (first["id"], first["captured_at"])
    compared = await shoot(service, scene, cache=True, compare_to="previous")
    assert not compared["cached"] and compared["id"] != first["id"]
    assert compared["diff"]["baseline"]["id"] == first["id"]


async def test_a_job_compares_with_the_previous_sync_capture(service: Service) -> None:
    scene = new_scene(box=(0, 100, 400, 200), box_colour=(10, 160, 10))
    first = await shoot(service, scene)
    SCENES[scene].box = (0, 100, 200, 200)
    created = await service.client.post("/v1/jobs", headers=service.auth(), json={
        "url": f"{service.site.url}/scene?name={scene}", **SIZE, "compare_to": "previous"})
    assert created.status == 202, await created.text()
    job_id = (await created.json())["id"]

    async def fetch() -> Any:
        return await (await service.client.get(f"/v1/jobs/{job_id}", headers=service.auth())).json()

    done = await poll_until_done(fetch)
    assert done["status"] == "succeeded", done
    diff = done["result"]["diff"]
    assert diff["baseline"]["id"] == first["id"] and diff["changed_pixels"] == 200 * 200
    assert diff["regions"] == [{"x": 200, "y": 100, "width": 200, "height": 200}]


async def test_on_redis_another_instance_finds_the_previous_capture(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool, redis_server: RedisTestServer,
) -> None:
    redis_server.start()
    redis_server.flush()

    async def instance(name: str, key: Any = None) -> JobsApp:
        settings = settings_for(tmp_path / name, test_site, state={"backend": "redis", "redis": {"url": redis_server.url}},
                                storage={"local": {"path": str(tmp_path / "shared-captures")}})
        return await start_app(aiohttp_client, settings, test_site, shared_pool, key=key)

    first_instance = await instance("one")
    second_instance = await instance("two", key=(first_instance.record, first_instance.key))
    scene = new_scene(box=(20, 40, 60, 60))
    first = await shoot(first_instance, scene)
    SCENES[scene].box = (20, 40, 60, 30)
    second = await shoot(second_instance, scene, compare_to="previous")
    assert second["diff"]["baseline"]["id"] == first["id"] and second["diff"]["changed_pixels"] == 60 * 30
    _, other = await second_instance.new_key()
    refused = await shoot(second_instance, scene, key=other, compare_to=first["id"], status=400)
    assert set(refused["error"]["details"]["fields"]) == {"compare_to"}


async def test_a_capture_to_the_callers_bucket_is_compared_but_never_a_baseline(
    make_service: Any, s3_server: Any, s3_bucket: str, test_site: TestSite
) -> None:
    endpoint_port = s3_server.endpoint_url.rsplit(":", 1)[1]
    service: Service = await make_service(egress={"allow": [f"127.0.0.1:{test_site.port}",
                                                            f"127.0.0.1:{endpoint_port}"]})
    scene = new_scene(box=(0, 100, 400, 100))
    ours = await shoot(service, scene)
    bucket = {"bucket": s3_bucket, "region": "us-east-1", "access_key_id": "AKIACUSTOMER00000002",
              "secret_access_key": "s" * 30, "endpoint_url": s3_server.endpoint_url, "key_prefix": "mine/"}
    SCENES[scene].box = None
    theirs = await shoot(service, scene, s3=bucket, compare_to="previous")
    assert theirs["diff"]["baseline"]["id"] == ours["id"] and theirs["diff"]["changed_pixels"] == 400 * 100
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert len(keys) == 2 and all(k.startswith("mine/") for k in keys)  # the capture and its marked image
    again = await shoot(service, scene, compare_to="previous")
    assert again["diff"]["baseline"]["id"] == ours["id"]  # the bucket's capture is no baseline
    named = await shoot(service, scene, compare_to=theirs["id"], status=400)
    assert "own S3 bucket" in named["error"]["details"]["fields"]["compare_to"]


async def test_records_live_with_the_retention_not_with_a_short_presigned_link(
    make_service: Any, s3_server: Any, s3_bucket: str
) -> None:
    storage = config_loading.to_dict(s3_server.storage_config(s3_bucket, presign_seconds=1))
    service: Service = await make_service(storage=storage)
    scene = new_scene(box=(0, 100, 400, 100))
    first = await shoot(service, scene)
    link_expiry = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    assert await wait_for(lambda: datetime.now(UTC) > link_expiry, timeout=5)  # the link is dead
    later = await shoot(service, scene, compare_to=first["id"])
    assert later["diff"]["baseline"]["id"] == first["id"] and later["diff"]["changed_pixels"] == 0
