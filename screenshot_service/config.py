"""Settings: every configuration key, its default and the rule its value must meet.

The dataclass defaults below *are* the embedded defaults; ``config/default.toml``
documents the same values (a test keeps the two equal).  config_loading.py reads
them from a TOML file and ``SCREENSHOT_<SECTION>_<KEY>`` environment overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key, value and rule."""


class Secret(str):
    """A string that never shows itself in reprs or logs (starlette's ``Secret``)."""

    def __repr__(self) -> str:
        return "'**********'" if self else "''"


def _opt(default: Any, **rules: Any) -> Any:
    """A field with validation rules: min/max (numbers), choices (strings)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = _opt(8000, min=0, max=65535)
    public_url: str = ""  # base for returned URLs; empty = the request's Host, if trusted (allowed_hosts)
    # With public_url empty: Host header names trusted in returned URLs; any other Host gets the
    # bound address, so a forged Host never lands in links handed to others.  Empty = the bound
    # address and localhost.
    allowed_hosts: list[str] = _opt([])
    tls_cert: str = ""
    tls_key: str = ""
    drain_seconds: float = _opt(30.0, min=0, max=600)  # how long shutdown lets in-flight work finish
    max_body_bytes: int = _opt(3 * 1024 * 1024, min=64 * 1024, max=64 * 1024 * 1024)
    # Anyone can open a connection, so nothing unfinished may wait unbounded: a request head not
    # complete this long after the connection opened (or after its previous answer) closes it.
    head_timeout_seconds: float = _opt(10.0, min=1, max=300)
    # The whole body must arrive within this; else 408 request_timeout and the connection closes.
    body_timeout_seconds: float = _opt(15.0, min=1, max=300)
    # Requests at once reading a body before their key is known (the key is in the body); past it,
    # 503 at once.  A key in a header or the query is checked first, so those skip this bound.
    max_unauthenticated: int = _opt(64, min=1, max=100_000)


@dataclass(frozen=True)
class BrowserConfig:
    executable: str = ""  # empty = auto: the headless shell, else chromium, chromium-browser, google-chrome
    pool_size: int = _opt(4, min=1, max=64)
    max_queue: int = _opt(16, min=0, max=10000)
    recycle_after: int = _opt(200, min=1, max=1_000_000)
    browsers: int = _opt(1, min=1, max=16)
    launch_timeout_seconds: float = _opt(30.0, min=1, max=300)
    # A browser that answers no DevTools call for this long is hung (e.g. stopped): it is killed and replaced.
    hang_timeout_seconds: float = _opt(10.0, min=1, max=120)
    # A renderer (one capture's page: contexts never share one) holding more memory than this is
    # killed, failing only that capture with 422 page_memory_exceeded (browser/memory.py).
    max_page_memory_mb: int = _opt(1024, min=64, max=1_048_576)
    # A browser process and its utility processes (Blobs, and an incognito context's CacheStorage and
    # IndexedDB live there) holding more than this are killed and relaunched; the captures they had in
    # flight fail with 422 page_memory_exceeded.  0 = 512 + max_page_memory_mb per slot of the browser.
    max_browser_memory_mb: int = _opt(0, min=0, max=1_048_576)
    # What each origin of a capture's page may store (CacheStorage, IndexedDB, ...); writes beyond it
    # fail in the page with QuotaExceededError, and the capture goes on.
    max_page_storage_mb: int = _opt(256, min=1, max=1_048_576)


@dataclass(frozen=True)
class CaptureConfig:
    deadline_seconds: float = _opt(30.0, min=1, max=300)
    # A document printing to more pages is refused (422 pdf_too_many_pages): capture/pdf.py.
    max_pdf_pages: int = _opt(1000, min=1, max=100_000)


@dataclass(frozen=True)
class EgressConfig:
    allow: list[str] = _opt([])
    deny: list[str] = _opt([])


@dataclass(frozen=True)
class LocalStorageConfig:
    path: str = "data/captures"


@dataclass(frozen=True)
class S3StorageConfig:
    bucket: str = ""
    region: str = ""
    endpoint_url: str = ""
    access_key_id: Secret = Secret("")
    secret_access_key: Secret = Secret("")
    prefix: str = "captures/"
    public_base_url: str = ""
    presign_seconds: int = _opt(86400, min=1, max=604800)  # SigV4 presigned URLs live at most 7 days
    manage_lifecycle: bool = False


@dataclass(frozen=True)
class StorageConfig:
    backend: str = _opt("local", choices=("local", "s3"))
    retention_days: int = _opt(30, min=1, max=3650)
    local: LocalStorageConfig = field(default_factory=LocalStorageConfig)
    s3: S3StorageConfig = field(default_factory=S3StorageConfig)


@dataclass(frozen=True)
class SqliteStateConfig:
    path: str = "data/state.sqlite3"


@dataclass(frozen=True)
class RedisStateConfig:
    url: Secret = Secret("redis://127.0.0.1:6379/0")  # may carry a password
    cluster: bool = False  # a Redis Cluster: url names any node, the client finds the others


@dataclass(frozen=True)
class StateConfig:
    backend: str = _opt("sqlite", choices=("sqlite", "redis"))
    sqlite: SqliteStateConfig = field(default_factory=SqliteStateConfig)
    redis: RedisStateConfig = field(default_factory=RedisStateConfig)


@dataclass(frozen=True)
class JobsConfig:
    # Job captures at once, in the pool's jobs lane: their own Chromium, 15 nice steps down, so a
    # backlog only takes the CPU sync captures leave idle (browser/pool.py).  0: run none here.
    workers: int = _opt(2, min=0, max=64)
    webhook_attempts: int = _opt(3, min=1, max=10)
    webhook_timeout_seconds: float = _opt(10.0, min=1, max=60)
    max_batch: int = _opt(100, min=1, max=10000)  # items one POST /v1/batches may hold


@dataclass(frozen=True)
class MonitorsConfig:
    min_interval_seconds: int = _opt(300, min=1, max=31_536_000)  # the shortest schedule a monitor may ask for
    # Monitor runs at once on this instance, in the jobs' browser lane (0: run none here; others on
    # the same state store do).
    workers: int = _opt(1, min=0, max=64)


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogConfig:
    # json: one object a line (time, level, logger, message, request_id, job_id, exception, the
    # access record's fields), for log pipelines; text: one line a record, for people.
    format: str = _opt("text", choices=("text", "json"))
    level: str = _opt("info", choices=LOG_LEVELS)


@dataclass(frozen=True)
class PlanConfig:
    requests_per_second: float = _opt(1.0, min=0.001, max=100000)
    burst: int = _opt(1, min=1, max=100000)
    monthly_captures: int = _opt(100, min=0, max=10**12)
    concurrency: int = _opt(1, min=1, max=10000)
    max_queued_jobs: int = _opt(10, min=0, max=10**9)
    # Of an instance's browser slots, the fraction one key may hold while other keys wait for
    # one (at least one slot); alone, a key may use them all (browser/fair_slots.py).
    max_pool_share: float = _opt(1.0, min=0.01, max=1.0)
    # A capture that ends in a timeout is refunded, but keeps its key's concurrency slot this
    # many times as long again as it ran: a stream of timeouts is slowed, not free (limits/admission.py).
    timeout_penalty: float = _opt(1.0, min=0, max=100)
    # The [proxies.NAME] pools this plan's keys may use with proxy_pool; ["*"] = every pool.
    proxy_pools: list[str] = _opt([])
    # Whether its keys may name a proxy of their own (the proxy option).
    custom_proxy: bool = True
    max_monitors: int = _opt(3, min=0, max=10**6)  # monitors per key; one more: 422 monitor_limit_reached


def default_plans() -> dict[str, PlanConfig]:
    return {
        "free": PlanConfig(),
        "pro": PlanConfig(
            requests_per_second=10, burst=20, monthly_captures=50000, concurrency=8, max_queued_jobs=1000,
            proxy_pools=["*"],
            max_monitors=100,
        ),
    }


@dataclass(frozen=True)
class ProxyPoolConfig:
    # http://[user:pass@]host:port each, used in turn; checked at start-up (egress/upstream.py).
    # Secret: a URL may hold a password, and settings get printed.
    urls: list[Secret] = _opt([])


@dataclass(frozen=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    state: StateConfig = field(default_factory=StateConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    monitors: MonitorsConfig = field(default_factory=MonitorsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    plans: dict[str, PlanConfig] = field(default_factory=default_plans)
    proxies: dict[str, ProxyPoolConfig] = field(default_factory=dict)  # [proxies.NAME]: upstream proxy pools
