"""A real S3-compatible server on loopback for the tests: moto's ThreadedMotoServer.

Fixtures (register with ``pytest_plugins = ["tests.s3_server"]``):

``s3_server`` (session)
    ``.endpoint_url``; ``.stop()`` / ``.start()`` take S3 down and bring it back on the
    same port (buckets and objects survive, as with a real outage); ``.storage_config(bucket,
    **s3_keys)`` a StorageConfig for S3Storage; ``.client()`` a boto3 client and
    ``.aio_client()`` an aioboto3 client context for assertions.  Credentials are dummies
    carried by the object itself: no AWS_* environment variables are touched.
``s3_bucket`` (function)
    the name of a fresh, empty bucket on that server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import aioboto3
import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from screenshot_service import config, config_loading

HOST = "127.0.0.1"
# moto accepts any credentials (no IAM checks unless told to); these only have to look real.
ACCESS_KEY_ID = "AKIATESTSERVICE00001"
SECRET_ACCESS_KEY = "test-service-secret-key-0000000000000001"
REGION = "us-east-1"


class S3TestServer:
    def __init__(self) -> None:
        self.port = 0  # the first start picks a free port; restarts reuse it
        self._server: ThreadedMotoServer | None = None
        # One session each: a new one parses botocore's S3 model again (~0.1 s; a client
        # from a warm session takes ~0.01 s).  Clients stay per call, so none outlives a restart.
        self._session = boto3.session.Session()
        self._aio_session = aioboto3.Session()
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.region = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server

    def stop(self) -> None:
        """Take the server down so that connections are refused (not just left unanswered)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        inner = server._server  # ThreadedMotoServer.stop leaves the socket open
        if inner is not None:
            inner.server_close()

    def storage_config(self, bucket: str, **s3_keys: Any) -> config.StorageConfig:
        s3 = {
            "bucket": bucket,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }
        retention_days = s3_keys.pop("retention_days", 30)
        s3.update(s3_keys)
        return config_loading.from_dict(
            {"storage": {"backend": "s3", "retention_days": retention_days, "s3": s3}}
        ).storage

    def _client_args(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        }

    def client(self) -> Any:
        return self._session.client("s3", **self._client_args())

    def aio_client(self) -> Any:
        """``async with s3_server.aio_client() as client:`` — an aioboto3 S3 client."""
        return self._aio_session.client("s3", **self._client_args())


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3TestServer]:
    server = S3TestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3TestServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_server.start()  # in case an earlier test left it stopped
    with contextlib.closing(s3_server.client()) as client:
        client.create_bucket(Bucket=name)
    yield name
    if not s3_server.running:
        return
    with contextlib.closing(s3_server.client()) as client:
        _empty_and_delete(client, name)


def _empty_and_delete(client: Any, name: str) -> None:
    # Best-effort cleanup so the session's in-memory server does not grow test by test.
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)
