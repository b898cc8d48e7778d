"""Signed webhook delivery (SPEC §4): POST the final job JSON, retry with backoff.

Every POST goes through the egress proxy, which resolves the host once,
checks every address against the policy and connects to a checked one: the
check made when the job was submitted cannot be undone by DNS rebinding or a
redirect (redirects are not followed at all).  Each attempt is signed afresh,
so a receiver's "no older than 5 minutes" rule holds on the last retry too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger("screenshot_service.jobs.webhooks")

SIGNATURE_HEADER = "X-Signature"
USER_AGENT = "screenshot-service-webhook/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=TIMESTAMP,v1=HEX(HMAC-SHA256(secret, "TIMESTAMP." + body))``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does (README snippet; used by the tests)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    last_status: int | None  # the receiver's last HTTP status, None when it never answered


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        proxy_url: str | None,
        attempts: int,
        timeout: float,
        backoff: float = 1.0,
    ) -> None:
        self.session = session
        self.proxy_url = proxy_url
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.backoff = backoff  # seconds before the 2nd attempt; doubles after each failure

    async def deliver(self, url: str, body: bytes, secret: str, *, job_id: str) -> Delivery:
        host = urlsplit(url).hostname or ""
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            status = await self._post(url, body, secret, job_id)
            if status is not None and 200 <= status < 300:
                log.info("webhook delivered job=%s host=%s attempt=%d", job_id, host, attempt)
                return Delivery(True, attempt, status)
            log.warning("webhook failed job=%s host=%s attempt=%d status=%s", job_id, host, attempt, status)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        return Delivery(False, self.attempts, status)

    async def _post(self, url: str, body: bytes, secret: str, job_id: str) -> int | None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Job-Id": job_id,
            SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        }
        try:
            async with self.session.post(
                url, data=body, headers=headers, proxy=self.proxy_url, timeout=self.timeout,
                allow_redirects=False,
            ) as response:
                await response.read()  # let the connection be reused; the content does not matter
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            # Refused by the egress proxy (403), unreachable, timed out: all just "not delivered".
            return None
