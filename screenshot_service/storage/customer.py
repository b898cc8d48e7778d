"""Uploads to a caller's own bucket (the request's ``s3`` object, SPEC §3).

The caller's credentials live only in the frozen ``CustomerS3`` of one request
and in a client that exists for one upload; they are never stored, logged or
shown in a repr, and errors are phrased from S3 error codes alone.  Checking
``endpoint_url`` against the egress policy is the caller's job, done before
``put_to_customer_bucket`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aioboto3

from ..config import Secret
from . import s3
from .base import StoredObject
from .errors import BucketRejected, StorageError

log = logging.getLogger("screenshot_service.storage.customer")

URL_SECONDS = 86400  # the presigned URL we hand back is valid for one day
FIELDS = ("bucket", "region", "access_key_id", "secret_access_key", "endpoint_url", "key_prefix")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CREDENTIAL = re.compile(r"^[\x21-\x7e]{1,512}$")  # printable, no spaces: nothing that can split a header

_session: aioboto3.Session | None = None


@dataclass(frozen=True)
class CustomerS3:
    """A validated ``s3`` request object; its repr shows neither the key id nor the secret."""

    bucket: str
    region: str
    access_key_id: Secret = field(repr=False)
    secret_access_key: Secret = field(repr=False)
    endpoint_url: str | None = None
    key_prefix: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> CustomerS3:
        """Parse the request's ``s3`` object; BucketRejected names every bad field (never its value)."""
        if not isinstance(obj, dict):
            raise BucketRejected({"s3": "must be an object with " + ", ".join(FIELDS[:4])})
        problems = {
            f"s3.{name}": "unknown field; known: " + ", ".join(FIELDS) for name in obj if name not in FIELDS
        }
        values: dict[str, Any] = {}
        for name in FIELDS:
            value, problem = _check(name, obj.get(name))
            if problem:
                problems[f"s3.{name}"] = problem
            values[name] = value
        if problems:
            raise BucketRejected(problems)
        values["access_key_id"] = Secret(values["access_key_id"])
        values["secret_access_key"] = Secret(values["secret_access_key"])
        return cls(**values)


def _check(name: str, value: Any) -> tuple[Any, str | None]:
    """(clean value, problem or None) for one field of the ``s3`` object."""
    optional = name in ("endpoint_url", "key_prefix")
    if value is None or value == "":
        return ("" if name == "key_prefix" else None), (None if optional else "required")
    if not isinstance(value, str):
        return None, "must be a string"
    if name == "bucket" and (not _BUCKET.fullmatch(value) or ".." in value):
        return None, "must be a valid bucket name: 3-63 lowercase letters, digits, '.' and '-'"
    if name == "region" and not _REGION.fullmatch(value):
        return None, "must be a region name such as 'eu-west-1'"
    if name in ("access_key_id", "secret_access_key") and not _CREDENTIAL.fullmatch(value):
        return None, "must be 1-512 printable characters without spaces"
    if name == "key_prefix" and (len(value) > 512 or not value.isprintable()):
        return None, "must be at most 512 printable characters"
    if name == "endpoint_url":
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return None, "must be an http or https URL"
        if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 2048:
            return None, "must be an http or https URL"
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            return None, "must not carry user info, a query or a fragment"
    return value, None


def _get_session() -> aioboto3.Session:
    # One shared session (it caches service models); it holds no credentials, each client gets its own.
    global _session
    if _session is None:
        _session = aioboto3.Session()
    return _session


async def put_to_customer_bucket(
    spec: CustomerS3,
    name: str,
    data: bytes,
    content_type: str,
    *,
    endpoint_url: str | None = None,
    put_timeout: float = s3.DEFAULT_PUT_TIMEOUT,
    proxy_url: str | None = None,
) -> StoredObject:
    """Upload to the caller's bucket with their credentials; a presigned URL valid one day.

    ``endpoint_url`` overrides ``spec.endpoint_url`` (the service passes the URL it checked);
    ``proxy_url`` sends the upload through the egress proxy so the endpoint's address is
    checked again when connecting (no DNS rebinding between check and upload).
    Raises BucketRejected (a 400 naming the field) for a missing bucket or rejected credentials,
    else StorageError (502).
    """
    endpoint = endpoint_url or spec.endpoint_url or None
    key = spec.key_prefix + name
    deadline = asyncio.timeout(put_timeout)
    try:
        async with deadline:
            client_cm = _get_session().client(
                "s3",
                region_name=spec.region,
                endpoint_url=endpoint,
                aws_access_key_id=str(spec.access_key_id),
                aws_secret_access_key=str(spec.secret_access_key),
                config=s3.client_config(endpoint, ignore_configured_endpoints=True, proxy_url=proxy_url),
            )
            async with client_cm as client:
                cache_control = f"private, max-age={URL_SECONDS}"
                await s3.upload(client, spec.bucket, key, data, content_type, cache_control)
                url = await client.generate_presigned_url(
                    "get_object", Params={"Bucket": spec.bucket, "Key": key}, ExpiresIn=URL_SECONDS
                )
    except Exception as exc:
        error = _customer_error(exc, spec, put_timeout if deadline.expired() else None)
        log.info("upload to customer bucket %r failed: %s", spec.bucket, error.message)
        raise error from None
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=URL_SECONDS)
    return StoredObject(name=name, url=url, expires_at=expires_at, size=len(data), content_type=content_type)


def _customer_error(exc: BaseException, spec: CustomerS3, timed_out: float | None) -> StorageError | BucketRejected:
    """The caller's own mistakes are 400s naming the field; their bucket's failures are 502s."""
    if timed_out is not None:
        return StorageError(f"upload to bucket {spec.bucket!r} did not finish within {timed_out:g} s")
    code = s3.error_code(exc)
    if code == "NoSuchBucket":
        return BucketRejected({"s3.bucket": f"bucket {spec.bucket} does not exist"})
    if code == "InvalidBucketName":
        return BucketRejected({"s3.bucket": f"bucket name {spec.bucket} was rejected by the endpoint"})
    if code == "InvalidAccessKeyId":
        return BucketRejected({"s3.access_key_id": "credentials were rejected"})
    if code == "SignatureDoesNotMatch":
        return BucketRejected({"s3.secret_access_key": "credentials were rejected"})
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        return BucketRejected({"s3.region": f"bucket {spec.bucket} is not in region {spec.region}"})
    return StorageError(f"could not store capture in your bucket: {s3.describe_failure(exc, spec.bucket)}")
