"""S3 storage (aioboto3): one client for the process, uploads from memory with SHA-256 checksums.

``upload``, ``client_config`` and ``describe_failure`` are shared with
``customer.py`` (uploads to a caller's own bucket), so both paths checksum,
split into parts, abort and report errors the same way.  Error messages are
built from the S3 error *code* only, never from S3's free text or our request,
so they can never carry credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from botocore import exceptions as boto

from ..config import ConfigError, StorageConfig
from .base import StoredObject
from .errors import StorageError

log = logging.getLogger("screenshot_service.storage.s3")

PART_SIZE = 8 * 1024 * 1024  # captures above this go multipart, in parts of this size
PART_CONCURRENCY = 4  # parts in flight at once: bounded memory (each part is a copy)
ABORT_TIMEOUT = 5.0  # an abort after a failure may outlive put_timeout by this much (20 + 5 < 30 s deadline)
DEFAULT_PUT_TIMEOUT = 20.0
LIFECYCLE_TIMEOUT = 30.0
LIFECYCLE_RULE_ID = "screenshot-service-retention"
_SAFE_CODE = re.compile(r"^[A-Za-z0-9.]{1,64}$")


def client_config(
    endpoint_url: str | None, *, ignore_configured_endpoints: bool = False, proxy_url: str | None = None
) -> AioConfig:
    """Retries and socket timeouts sized so three attempts stay well inside the capture deadline."""
    return AioConfig(
        # Three attempts in all: botocore's "max_attempts" would count retries only (1 + 3).
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=5,
        read_timeout=10,
        signature_version="s3v4",  # presigned URLs of up to 7 days need SigV4
        # We always send an explicit SHA-256; no extra CRC32 that S3-compatible servers may reject.
        request_checksum_calculation="when_required",
        # Self-hosted servers (MinIO, moto) have no per-bucket DNS names.
        s3={"addressing_style": "path"} if endpoint_url else None,
        # A caller's bucket must never be reached through AWS_ENDPOINT_URL* meant for ours.
        ignore_configured_endpoint_urls=ignore_configured_endpoints,
        # A caller-supplied endpoint goes through the egress proxy: checked at connect time.
        proxies={"http": proxy_url, "https": proxy_url} if proxy_url else None,
    )


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


async def upload(client: Any, bucket: str, key: str, data: bytes, content_type: str, cache: str) -> None:
    """Store ``data`` at ``key``; over PART_SIZE as a multipart upload that is aborted on any error."""
    common = dict(Bucket=bucket, Key=key, ContentType=content_type, CacheControl=cache)
    common["ChecksumAlgorithm"] = "SHA256"
    if len(data) <= PART_SIZE:
        await client.put_object(**common, Body=data, ChecksumSHA256=sha256_b64(data))
        return
    upload_id = (await client.create_multipart_upload(**common))["UploadId"]
    try:
        parts = await _upload_parts(client, bucket, key, upload_id, data)
        await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:  # including cancellation by put_timeout: no orphaned parts
        await _abort(client, bucket, key, upload_id)
        raise


async def _upload_parts(client: Any, bucket: str, key: str, upload_id: str, data: bytes) -> list[Any]:
    slots = asyncio.Semaphore(PART_CONCURRENCY)

    async def one(number: int, offset: int) -> dict[str, Any]:
        async with slots:
            chunk = data[offset : offset + PART_SIZE]  # sliced only once a slot is free
            checksum = sha256_b64(chunk)
            answer = await client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
            )
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

    tasks = [
        asyncio.ensure_future(one(number, offset))
        for number, offset in enumerate(range(0, len(data), PART_SIZE), start=1)
    ]
    try:
        return list(await asyncio.gather(*tasks))
    finally:  # the first failure stops the other parts before we abort
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    # A separate task with asyncio.wait: works even while our own task is being cancelled.
    task = asyncio.ensure_future(client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id))
    done, _ = await asyncio.wait({task}, timeout=ABORT_TIMEOUT)
    if not done:
        task.cancel()
        problem = "timed out"
    elif task.cancelled() or task.exception() is None:
        return
    else:
        problem = describe_failure(task.exception() or Exception(), bucket)
    log.warning(
        "could not abort multipart upload of %s in bucket %r (%s); the bucket's "
        "AbortIncompleteMultipartUpload lifecycle rule removes its parts", key, bucket, problem,
    )


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('NoSuchBucket'), or '' for anything else."""
    if not isinstance(exc, boto.ClientError):
        return ""
    error, meta = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
    code = str(error.get("Code") or meta.get("HTTPStatusCode", ""))
    return code if _SAFE_CODE.match(code) else "UnknownError"  # a hostile endpoint picks the code


_CODE_TEXT = {
    "NoSuchBucket": "bucket {bucket!r} does not exist",
    "AccessDenied": "access to bucket {bucket!r} was denied",
    "AllAccessDisabled": "access to bucket {bucket!r} was denied",
    "InvalidAccessKeyId": "the access key id was rejected",
    "SignatureDoesNotMatch": "the secret access key was rejected",
    "PermanentRedirect": "bucket {bucket!r} is in another region or behind another endpoint",
}


def describe_failure(exc: BaseException, bucket: str) -> str:
    """What failed, in words safe for users and logs: a bucket name and an error code, no secrets."""
    if isinstance(exc, boto.ClientError):
        code = error_code(exc)
        text = _CODE_TEXT.get(code, "S3 {op} on bucket {bucket!r} failed")
        return f"{text.format(bucket=bucket, op=exc.operation_name)} ({code})"
    if isinstance(exc, boto.ConnectTimeoutError | boto.ReadTimeoutError | TimeoutError):
        return f"S3 endpoint did not answer in time (bucket {bucket!r})"
    if isinstance(exc, boto.ConnectionError | aiohttp.ClientError | OSError):
        return f"S3 endpoint unreachable (bucket {bucket!r})"
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return "no usable S3 credentials are configured"
    if isinstance(exc, boto.BotoCoreError):  # its text may quote parameters: name the kind only
        return f"S3 client error {type(exc).__name__} (bucket {bucket!r})"
    return f"S3 request failed: {type(exc).__name__} (bucket {bucket!r})"


class S3Storage:
    """The S3 backend; ``async with S3Storage(cfg) as storage`` owns one client for its lifetime."""

    def __init__(self, cfg: StorageConfig, *, put_timeout: float = DEFAULT_PUT_TIMEOUT) -> None:
        if not cfg.s3.bucket:
            raise ConfigError("storage.s3.bucket must be set when storage.backend = 's3'")
        self._cfg = cfg.s3
        self._retention = timedelta(days=cfg.retention_days)
        self._put_timeout = put_timeout
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        # Public URLs live as long as the object; presigned ones no longer than themselves.
        max_age = int(self._retention.total_seconds())
        if not self._cfg.public_base_url:
            max_age = min(max_age, self._cfg.presign_seconds)
        self._cache_control = f"public, max-age={max_age}"

    async def __aenter__(self) -> S3Storage:
        cfg = self._cfg
        endpoint = cfg.endpoint_url or None
        session = aioboto3.Session(
            aws_access_key_id=cfg.access_key_id or None,  # empty: the default chain (env, IAM role)
            aws_secret_access_key=cfg.secret_access_key or None,
            region_name=cfg.region or None,
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=endpoint, config=client_config(endpoint))
        )
        try:
            if cfg.manage_lifecycle:
                async with asyncio.timeout(LIFECYCLE_TIMEOUT):
                    await self._ensure_lifecycle()
        except Exception as exc:
            await self.__aexit__(None, None, None)
            message = f"could not install the lifecycle rule: {describe_failure(exc, cfg.bucket)}"
            raise StorageError(message) from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client = None
        await self._stack.aclose()

    @property
    def client(self) -> Any:
        """The live aiobotocore client (also for health checks and tests); only inside ``async with``."""
        if self._client is None:
            raise RuntimeError("S3Storage is used outside 'async with'")
        return self._client

    async def put(self, name: str, data: bytes, content_type: str, *, base_url: str = "") -> StoredObject:
        client, key, bucket = self.client, self._cfg.prefix + name, self._cfg.bucket
        deadline = asyncio.timeout(self._put_timeout)
        try:
            async with deadline:
                await upload(client, bucket, key, data, content_type, self._cache_control)
                if self._cfg.public_base_url:
                    url = f"{self._cfg.public_base_url.rstrip('/')}/{key}"
                    lifetime = self._retention
                else:
                    # A link that outlives the object (retention < presign_seconds) would only 404.
                    lifetime = min(timedelta(seconds=self._cfg.presign_seconds), self._retention)
                    params = {"Bucket": bucket, "Key": key}
                    seconds = int(lifetime.total_seconds())
                    url = await client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
        except Exception as exc:
            if deadline.expired():
                message = f"S3 upload to bucket {bucket!r} did not finish within {self._put_timeout:g} s"
            else:
                message = f"could not store capture: {describe_failure(exc, bucket)}"
            log.warning("%s", message)
            raise StorageError(message) from None
        expires_at = datetime.now(UTC).replace(microsecond=0) + lifetime
        return StoredObject(name, url, expires_at, size=len(data), content_type=content_type)

    async def get(self, name: str) -> tuple[bytes, str] | None:
        client, bucket = self.client, self._cfg.bucket
        if not name or "/" in name:
            return None
        try:
            async with asyncio.timeout(self._put_timeout):
                answer = await client.get_object(Bucket=bucket, Key=self._cfg.prefix + name)
                async with answer["Body"] as body:
                    data = await body.read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"could not read capture: {describe_failure(exc, bucket)}") from None
        return data, answer.get("ContentType") or "application/octet-stream"

    async def _ensure_lifecycle(self) -> None:
        """Install or refresh our retention rule, keeping every other rule of the bucket as it is."""
        client, bucket = self.client, self._cfg.bucket
        wanted = {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": self._cfg.prefix},
            "Status": "Enabled",
            "Expiration": {"Days": self._retention.days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        try:
            current = await client.get_bucket_lifecycle_configuration(Bucket=bucket)
        except boto.ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            current = {}
        rules = current.get("Rules", [])
        ours = [rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID]
        if len(ours) == 1 and all(ours[0].get(field) == value for field, value in wanted.items()):
            log.info("lifecycle rule %s on bucket %r is up to date", LIFECYCLE_RULE_ID, bucket)
            return
        extra = {}
        if "TransitionDefaultMinimumObjectSize" in current:  # keep the bucket's own setting
            extra["TransitionDefaultMinimumObjectSize"] = current["TransitionDefaultMinimumObjectSize"]
        others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
        await client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [*others, wanted]}, **extra
        )
        log.info(
            "lifecycle rule %s on bucket %r: expire %r after %d days",
            LIFECYCLE_RULE_ID, bucket, self._cfg.prefix, self._retention.days,
        )
