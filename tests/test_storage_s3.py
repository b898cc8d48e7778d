"""S3 storage and customer-bucket uploads against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import ClientError, EndpointConnectionError

from screenshot_service.config import ConfigError
from screenshot_service.error_map import as_api_error
from screenshot_service.faults import LayerError
from screenshot_service.storage import errors as storage_errors
from screenshot_service.storage import s3 as s3_module
from screenshot_service.storage.customer import CustomerS3, put_to_customer_bucket
from screenshot_service.storage.s3 import LIFECYCLE_RULE_ID, PART_SIZE, S3Storage
from tests.conftest import answered_by, wait_for

if TYPE_CHECKING:
    from tests.s3_server import S3TestServer

pytest_plugins = ["tests.s3_server"]

CUSTOMER_KEY_ID = "AKIACUSTOMERKEY00042"
CUSTOMER_SECRET = "customer-secret-Zm9vYmFyYmF6cXV4c2VjcmV0"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def close_to(when: datetime, expected: datetime) -> bool:
    return abs((when - expected).total_seconds()) < 5


@pytest.fixture
async def storage(s3_server: S3TestServer, s3_bucket: str) -> AsyncIterator[S3Storage]:
    async with S3Storage(s3_server.storage_config(s3_bucket, prefix="caps/")) as storage:
        yield storage


async def head(s3_server: S3TestServer, bucket: str, key: str, **kwargs: Any) -> dict[str, Any]:
    async with s3_server.aio_client() as client:
        return dict(await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **kwargs))


async def leftovers(s3_server: S3TestServer, bucket: str) -> tuple[list[Any], list[Any]]:
    """(incomplete multipart uploads, objects) in the bucket."""
    async with s3_server.aio_client() as client:
        uploads = (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])
        objects = (await client.list_objects_v2(Bucket=bucket)).get("Contents", [])
    return uploads, objects


# ----------------------------------------------------------------------------- put / get


async def test_put_lands_under_prefix_with_type_and_checksum(storage, s3_server, s3_bucket):
    data = b"\x89PNG fake image " * 100
    stored = await storage.put("a.png", data, "image/png")
    assert (stored.name, stored.size, stored.content_type) == ("a.png", len(data), "image/png")
    meta = await head(s3_server, s3_bucket, "caps/a.png")
    assert meta["ContentType"] == "image/png"
    assert meta["ContentLength"] == len(data)
    assert meta["ChecksumSHA256"] == sha256_b64(data)
    assert meta["CacheControl"] == "public, max-age=86400"  # presigned URL lifetime < 30-day retention


async def test_presigned_url_downloads_the_same_bytes(storage):
    data = os.urandom(50_000)
    stored = await storage.put("b.webp", data, "image/webp")
    assert "X-Amz-Expires=86400" in stored.url
    assert close_to(stored.expires_at, datetime.now(UTC) + timedelta(seconds=86400))
    async with aiohttp.ClientSession() as http, http.get(stored.url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/webp"
        assert await response.read() == data


async def test_public_base_url_gives_stable_url_and_retention_expiry(s3_server, s3_bucket):
    cfg = s3_server.storage_config(s3_bucket, public_base_url="https://cdn.example.com/", retention_days=10)
    async with S3Storage(cfg) as storage:
        stored = await storage.put("c.png", b"png", "image/png")
    assert stored.url == "https://cdn.example.com/captures/c.png"
    assert close_to(stored.expires_at, datetime.now(UTC) + timedelta(days=10))
    meta = await head(s3_server, s3_bucket, "captures/c.png")
    assert meta["CacheControl"] == f"public, max-age={10 * 86400}"


async def test_get_returns_bytes_and_type_or_none(storage):
    await storage.put("d.pdf", b"%PDF-1.7", "application/pdf")
    assert await storage.get("d.pdf") == (b"%PDF-1.7", "application/pdf")
    assert await storage.get("missing.png") is None
    assert await storage.get("../caps/d.pdf") is None


async def test_large_capture_goes_multipart_with_part_checksums(storage, s3_server, s3_bucket):
    data = os.urandom(PART_SIZE + 4096)
    stored = await storage.put("big.png", data, "image/png")
    assert stored.size == len(data)
    meta = await head(s3_server, s3_bucket, "caps/big.png")
    assert meta["ETag"].strip('"').endswith("-2")
    parts = hashlib.sha256(data[:PART_SIZE]).digest() + hashlib.sha256(data[PART_SIZE:]).digest()
    # The composite checksum: SHA-256 of the part checksums (S3 appends "-2"; moto's HEAD does not).
    assert meta["ChecksumSHA256"].removesuffix("-2") == sha256_b64(parts)
    assert meta.get("ChecksumType", "COMPOSITE") == "COMPOSITE"
    assert meta["ContentType"] == "image/png"
    assert (await head(s3_server, s3_bucket, "caps/big.png", PartNumber=1))["PartsCount"] == 2
    got = await storage.get("big.png")
    assert got is not None and hashlib.sha256(got[0]).digest() == hashlib.sha256(data).digest()


async def test_failed_multipart_is_aborted_and_leaves_no_object(storage, s3_server, s3_bucket):
    calls = 0

    def fail_second_part(**kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise EndpointConnectionError(endpoint_url=s3_server.endpoint_url)

    storage.client.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    with pytest.raises(storage_errors.StorageError, match="S3 endpoint unreachable") as caught:
        await storage.put("big.png", os.urandom(2 * PART_SIZE + 1), "image/png")
    assert as_api_error(caught.value).status == 502
    assert await leftovers(s3_server, s3_bucket) == ([], [])


async def test_multipart_cut_by_put_timeout_is_aborted(s3_server, s3_bucket):
    calls = {"UploadPart": 0, "AbortMultipartUpload": 0, "CompleteMultipartUpload": 0}

    async def stall(**kwargs: Any) -> None:
        calls["UploadPart"] += 1
        await asyncio.sleep(30)  # a part S3 never answers (a simulated slow endpoint, cut by put_timeout)

    def count(operation: str) -> Any:
        return lambda **kwargs: calls.__setitem__(operation, calls[operation] + 1)

    async with S3Storage(s3_server.storage_config(s3_bucket), put_timeout=1) as storage:
        events = storage.client.meta.events
        events.register("before-call.s3.UploadPart", stall)
        events.register("before-call.s3.AbortMultipartUpload", count("AbortMultipartUpload"))
        events.register("before-call.s3.CompleteMultipartUpload", count("CompleteMultipartUpload"))
        with pytest.raises(storage_errors.StorageError, match="did not finish within 1 s"):
            # put_timeout, then the abort's own bound: well before the stalled part would answer
            await answered_by(storage.put("slow.png", os.urandom(PART_SIZE + 1), "image/png"),
                              1 + s3_module.ABORT_TIMEOUT)
    assert calls["UploadPart"] >= 1 and calls["CompleteMultipartUpload"] == 0  # cut mid-part
    assert calls["AbortMultipartUpload"] == 1  # and aborted once
    assert await leftovers(s3_server, s3_bucket) == ([], [])


async def test_missing_bucket_is_a_storage_error_naming_it(s3_server):
    async with S3Storage(s3_server.storage_config("no-such-bucket-here")) as storage:
        with pytest.raises(storage_errors.StorageError) as caught:
            await storage.put("e.png", b"x", "image/png")
    assert as_api_error(caught.value).status == 502
    assert "'no-such-bucket-here'" in caught.value.message and "NoSuchBucket" in caught.value.message


def test_backend_needs_a_bucket(s3_server):
    with pytest.raises(ConfigError, match=r"storage\.s3\.bucket"):
        S3Storage(s3_server.storage_config(""))


async def test_put_outside_context_is_a_bug(s3_server, s3_bucket):
    with pytest.raises(RuntimeError):
        await S3Storage(s3_server.storage_config(s3_bucket)).put("f.png", b"x", "image/png")


# ----------------------------------------------------------------------------- outages


async def test_s3_down_is_tried_three_times_then_fails_and_recovers(s3_server, s3_bucket, caplog):
    caplog.set_level(logging.DEBUG)
    sends: list[str] = []
    async with S3Storage(s3_server.storage_config(s3_bucket), put_timeout=20) as storage:
        storage.client.meta.events.register("before-send.s3.PutObject", lambda **kwargs: sends.append("put"))
        s3_server.stop()
        try:
            with pytest.raises(storage_errors.StorageError) as caught:
                await answered_by(storage.put("g.png", b"x" * 1000, "image/png"), 20)
            assert "S3 endpoint unreachable" in caught.value.message  # retries gave up, not the put_timeout
            assert s3_server.secret_access_key not in caught.value.message
            assert len(sends) == 3  # three attempts in all (total_max_attempts), then it gives up
        finally:
            s3_server.start()
        stored = await storage.put("g.png", b"x" * 1000, "image/png")
    assert stored.size == 1000 and len(sends) == 4  # back up: the next put goes through at once
    assert all(s3_server.secret_access_key not in record.getMessage() for record in caplog.records)


async def test_hanging_endpoint_is_cut_at_put_timeout(s3_server):
    connections = 0

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = s3_server.storage_config("hang-bucket", endpoint_url=f"http://127.0.0.1:{port}")
    try:
        async with S3Storage(cfg, put_timeout=1) as storage:
            # Cut by put_timeout (1 s), not by the socket's read timeout (10 s) times three attempts.
            with pytest.raises(storage_errors.StorageError, match="did not finish within 1 s"):
                await answered_by(storage.put("h.png", b"x", "image/png"), 1)
        assert await wait_for(lambda: connections >= 1)
        assert connections == 1  # one attempt, waited on until put_timeout, never retried
    finally:
        server.close()
        await server.wait_closed()


# ----------------------------------------------------------------------------- lifecycle


async def lifecycle_rules(s3_server: S3TestServer, bucket: str) -> list[dict[str, Any]]:
    async with s3_server.aio_client() as client:
        return list((await client.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"])


OTHER_RULE = {"ID": "keep-me", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}


async def test_lifecycle_rule_installed_updated_and_others_kept(s3_server, s3_bucket, caplog):
    caplog.set_level(logging.INFO, logger="screenshot_service.storage.s3")
    async with s3_server.aio_client() as client:
        await client.put_bucket_lifecycle_configuration(
            Bucket=s3_bucket, LifecycleConfiguration={"Rules": [OTHER_RULE]}
        )
    for days in (10, 10, 12):
        cfg = s3_server.storage_config(s3_bucket, manage_lifecycle=True, retention_days=days, prefix="caps/")
        async with S3Storage(cfg):
            pass
        rules = {rule["ID"]: rule for rule in await lifecycle_rules(s3_server, s3_bucket)}
        assert set(rules) == {"keep-me", LIFECYCLE_RULE_ID}
        assert rules["keep-me"]["Expiration"] == {"Days": 7}
        ours = rules[LIFECYCLE_RULE_ID]
        assert ours["Filter"] == {"Prefix": "caps/"} and ours["Status"] == "Enabled"
        assert ours["Expiration"] == {"Days": days}
        assert ours["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert sum("is up to date" in record.getMessage() for record in caplog.records) == 1


async def test_lifecycle_left_alone_when_not_managed(s3_server, s3_bucket):
    async with S3Storage(s3_server.storage_config(s3_bucket, manage_lifecycle=False)):
        pass
    async with s3_server.aio_client() as client:
        with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
            await client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)


async def test_lifecycle_on_missing_bucket_stops_start_up(s3_server):
    cfg = s3_server.storage_config("no-such-bucket-either", manage_lifecycle=True)
    with pytest.raises(storage_errors.StorageError, match=r"lifecycle rule.*'no-such-bucket-either'.*NoSuchBucket"):
        async with S3Storage(cfg):
            pass


# ----------------------------------------------------------------------------- customer buckets


def customer_spec(s3_server: S3TestServer, bucket: str, **overrides: Any) -> CustomerS3:
    body = {
        "bucket": bucket,
        "region": "us-east-1",
        "access_key_id": CUSTOMER_KEY_ID,
        "secret_access_key": CUSTOMER_SECRET,
        "endpoint_url": s3_server.endpoint_url,
        "key_prefix": "shots/",
        **overrides,
    }
    return CustomerS3.from_json(body)


def assert_no_credentials(error: LayerError, caplog: pytest.LogCaptureFixture) -> None:
    shown = f"{error} {error!r} {json.dumps(as_api_error(error).to_dict())}"
    assert CUSTOMER_SECRET not in shown and CUSTOMER_KEY_ID not in shown
    # botocore's own DEBUG output may name the key id (in the Authorization header), never the secret.
    assert all(CUSTOMER_SECRET not in record.getMessage() for record in caplog.records)
    ours = [r for r in caplog.records if r.name.startswith("screenshot_service")]
    assert all(CUSTOMER_KEY_ID not in record.getMessage() for record in ours)


async def test_customer_bucket_upload_with_other_credentials(s3_server, s3_bucket):
    spec = customer_spec(s3_server, s3_bucket)
    assert CUSTOMER_SECRET not in repr(spec) and CUSTOMER_KEY_ID not in repr(spec)
    assert CUSTOMER_SECRET not in str(spec) and CUSTOMER_KEY_ID not in str(spec)
    data = os.urandom(10_000)
    stored = await put_to_customer_bucket(spec, "i.png", data, "image/png")
    assert close_to(stored.expires_at, datetime.now(UTC) + timedelta(days=1))
    assert "X-Amz-Expires=86400" in stored.url and f"/{s3_bucket}/shots/i.png" in stored.url
    meta = await head(s3_server, s3_bucket, "shots/i.png")
    assert meta["ChecksumSHA256"] == sha256_b64(data) and meta["ContentType"] == "image/png"
    async with aiohttp.ClientSession() as http, http.get(stored.url) as response:
        assert await response.read() == data


async def test_customer_endpoint_override_is_used(s3_server, s3_bucket):
    spec = customer_spec(s3_server, s3_bucket, endpoint_url="http://127.0.0.1:9")
    stored = await put_to_customer_bucket(
        spec, "j.png", b"j", "image/png", endpoint_url=s3_server.endpoint_url
    )
    assert stored.url.startswith(s3_server.endpoint_url)


async def test_customer_missing_bucket_is_400_naming_s3_bucket(s3_server, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    spec = customer_spec(s3_server, "customer-bucket-missing")
    with pytest.raises(storage_errors.BucketRejected) as caught:
        await put_to_customer_bucket(spec, "k.png", b"k", "image/png")
    assert as_api_error(caught.value).to_dict()["error"]["code"] == "invalid_parameter"
    assert as_api_error(caught.value).status == 400
    assert caught.value.details["fields"] == {"s3.bucket": "bucket customer-bucket-missing does not exist"}
    assert_no_credentials(caught.value, caplog)


REJECTED = "credentials were rejected"


@pytest.mark.parametrize(
    ("status", "code", "kind", "expected"),
    [
        (
            403,
            "InvalidAccessKeyId",
            storage_errors.BucketRejected,
            {"s3.access_key_id": "credentials were rejected"},
        ),
        (
            403,
            "SignatureDoesNotMatch",
            storage_errors.BucketRejected,
            {"s3.secret_access_key": "credentials were rejected"},
        ),
        (
            403,
            "AccessDenied",
            storage_errors.StorageError,
            "access to bucket 'cust-bucket' was denied (AccessDenied)",
        ),
        (404, "NoSuchBucket", storage_errors.BucketRejected, {"s3.bucket": "bucket cust-bucket does not exist"}),
        (
            500,
            "Evil\nCode " + CUSTOMER_KEY_ID,
            storage_errors.StorageError,
            "S3 PutObject on bucket 'cust-bucket' failed",
        ),
    ],
)
async def test_customer_error_codes(aiohttp_server, caplog, status, code, kind, expected):
    """A fake endpoint that echoes the key id back, as real S3 error bodies do (it cannot know the secret)."""
    caplog.set_level(logging.DEBUG)

    async def refuse(request: web.Request) -> web.Response:
        body = (
            f"<Error><Code>{code}</Code><Message>bad key {CUSTOMER_KEY_ID}</Message>"
            f"<AWSAccessKeyId>{CUSTOMER_KEY_ID}</AWSAccessKeyId></Error>"
        )
        return web.Response(status=status, text=body, content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    server = await aiohttp_server(app)
    spec = CustomerS3.from_json(
        {
            "bucket": "cust-bucket",
            "region": "eu-west-1",
            "access_key_id": CUSTOMER_KEY_ID,
            "secret_access_key": CUSTOMER_SECRET,
            "endpoint_url": str(server.make_url("")),
        }
    )
    with pytest.raises(kind) as caught:
        await put_to_customer_bucket(spec, "l.png", b"l", "image/png", put_timeout=5)
    if isinstance(expected, dict):
        assert caught.value.details["fields"] == expected
    else:
        assert expected in caught.value.message
    assert_no_credentials(caught.value, caplog)


async def test_customer_endpoint_unreachable_is_502(caplog):
    spec = CustomerS3.from_json(
        {
            "bucket": "cust-bucket",
            "region": "eu-west-1",
            "access_key_id": CUSTOMER_KEY_ID,
            "secret_access_key": CUSTOMER_SECRET,
            "endpoint_url": "http://127.0.0.1:9",
        }
    )
    with pytest.raises(storage_errors.StorageError, match="S3 endpoint unreachable") as caught:
        await put_to_customer_bucket(spec, "m.png", b"m", "image/png", put_timeout=5)
    assert_no_credentials(caught.value, caplog)


VALID = {
    "bucket": "my-bucket",
    "region": "eu-west-1",
    "access_key_id": "AKIAX",
    "secret_access_key": "s3cr3t",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bucket": None}, "s3.bucket"),
        ({"bucket": "My_Bucket"}, "s3.bucket"),
        ({"bucket": "a..b"}, "s3.bucket"),
        ({"region": ""}, "s3.region"),
        ({"region": "eu west"}, "s3.region"),
        ({"access_key_id": None}, "s3.access_key_id"),
        ({"access_key_id": 12345}, "s3.access_key_id"),
        ({"secret_access_key": "has space"}, "s3.secret_access_key"),
        ({"endpoint_url": "ftp://minio.example.com"}, "s3.endpoint_url"),
        ({"endpoint_url": "https://user:pw@minio.example.com"}, "s3.endpoint_url"),
        ({"endpoint_url": "http://minio.example.com:99999"}, "s3.endpoint_url"),
        ({"key_prefix": "a\nb"}, "s3.key_prefix"),
        ({"acl": "public-read"}, "s3.acl"),
    ],
)
def test_customer_spec_rejections(change, field):
    with pytest.raises(storage_errors.BucketRejected) as caught:
        CustomerS3.from_json({**VALID, **change})
    assert list(caught.value.fields) == [field]
    assert "has space" not in json.dumps(caught.value.details) and "has space" not in caught.value.message


def test_customer_spec_names_every_missing_field():
    with pytest.raises(storage_errors.BucketRejected) as caught:
        CustomerS3.from_json({})
    assert caught.value.fields == {
        "s3.bucket": "required",
        "s3.region": "required",
        "s3.access_key_id": "required",
        "s3.secret_access_key": "required",
    }
    with pytest.raises(storage_errors.BucketRejected, match="s3"):
        CustomerS3.from_json("my-bucket")


def test_customer_spec_defaults():
    spec = CustomerS3.from_json(VALID)
    assert (spec.endpoint_url, spec.key_prefix) == (None, "")
    assert "AKIAX" not in repr(spec) and "s3cr" not in repr(spec)
