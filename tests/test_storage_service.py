"""S3 through the whole service: our bucket, a caller's bucket, and S3 going away."""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import aiohttp
import pytest

from screenshot_service import config_loading
from screenshot_service.limits.quota import current_period
from tests.conftest import Service, answered_by, image_of
from tests.site import PAINT_RGB


def s3_sections(s3_server: Any, bucket: str, **s3_keys: Any) -> dict[str, Any]:
    storage = config_loading.to_dict(s3_server.storage_config(bucket, **s3_keys))
    return {"storage": storage}


async def test_capture_lands_in_s3_and_the_presigned_url_serves_it(
    make_service: Any, s3_server: Any, s3_bucket: str, test_site: Any
) -> None:
    service: Service = await make_service(**s3_sections(s3_server, s3_bucket))
    response = await service.shot("/paint", response_type="base64")
    assert response.status == 200
    body = await response.json()
    data = base64.b64decode(body["image_base64"])
    assert "X-Amz-Signature=" in body["url"] and body["url"].startswith(s3_server.endpoint_url)
    async with aiohttp.ClientSession() as http, http.get(body["url"]) as download:
        assert download.status == 200
        assert await download.read() == data
    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert len(listing) == 1 and listing[0]["Key"].startswith("captures/")
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=listing[0]["Key"], ChecksumMode="ENABLED")
    assert head["ContentType"] == "image/png"
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert image_of(data).convert("RGB").getpixel((200, 200)) == PAINT_RGB


async def test_s3_down_gives_502_within_the_deadline_refunds_and_recovers(
    make_service: Any, s3_server: Any, s3_bucket: str, test_site: Any
) -> None:
    service: Service = await make_service(**s3_sections(s3_server, s3_bucket))
    s3_server.stop()
    try:
        response = await answered_by(service.shot("/paint", timeout=15), 15)
        assert response.status == 502  # a storage error inside the deadline, not a 504 at it
        error = (await response.json())["error"]
        assert error["code"] == "storage_error"
        assert s3_server.secret_access_key not in error["message"]
        assert await service.state.credits_used(service.key_id, current_period().name) == 0
        assert (await service.client.get("/healthz")).status == 200
    finally:
        s3_server.start()
    again = await service.shot("/paint")
    assert again.status == 200
    assert await service.state.credits_used(service.key_id, current_period().name) == 1
    uploads = s3_server.client().list_multipart_uploads(Bucket=s3_bucket)
    assert not uploads.get("Uploads")


async def test_customer_bucket_gets_the_capture_and_credentials_stay_secret(
    make_service: Any, s3_server: Any, s3_bucket: str, test_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint_port = s3_server.endpoint_url.rsplit(":", 1)[1]
    service: Service = await make_service(
        egress={"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{endpoint_port}"]}
    )
    customer_bucket = s3_bucket
    secret = "customer-secret-" + "z" * 24
    key_id = "AKIACUSTOMER00000001"
    caplog.set_level(logging.DEBUG, logger="screenshot_service")
    response = await service.client.post("/v1/screenshot", json={
        "url": test_site.url + "/paint", "api_key": service.key,
        "s3": {"bucket": customer_bucket, "region": "us-east-1", "access_key_id": key_id,
               "secret_access_key": secret, "endpoint_url": s3_server.endpoint_url, "key_prefix": "mine/"},
    })
    text = await response.text()
    assert response.status == 200, text
    assert secret not in text
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=customer_bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("mine/")
    assert secret not in caplog.text and key_id not in caplog.text


async def test_customer_bucket_missing_is_400_and_refunded(
    make_service: Any, s3_server: Any, test_site: Any
) -> None:
    endpoint_port = s3_server.endpoint_url.rsplit(":", 1)[1]
    service: Service = await make_service(
        egress={"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{endpoint_port}"]}
    )
    response = await service.client.post("/v1/screenshot", json={
        "url": test_site.url + "/paint", "api_key": service.key,
        "s3": {"bucket": "no-such-bucket-here", "region": "us-east-1", "access_key_id": "AKIAX",
               "secret_access_key": "s" * 30, "endpoint_url": s3_server.endpoint_url},
    })
    assert response.status == 400
    error = (await response.json())["error"]
    assert "s3.bucket" in error["details"]["fields"]
    assert await service.state.credits_used(service.key_id, current_period().name) == 0


async def test_customer_endpoint_on_a_private_address_is_blocked(
    service: Service, s3_server: Any, s3_bucket: str
) -> None:
    response = await service.client.post("/v1/screenshot", json={
        "url": service.site.url + "/paint", "api_key": service.key,
        "s3": {"bucket": s3_bucket, "region": "us-east-1", "access_key_id": "AKIAX",
               "secret_access_key": "s" * 30, "endpoint_url": s3_server.endpoint_url},
    })
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "blocked_target" and "s3.endpoint_url" in error["message"]
    assert not s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents")
