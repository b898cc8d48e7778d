"""Settings: TOML file + ``SCREENSHOT_<SECTION>_<KEY>`` environment overrides.

The dataclass defaults below *are* the embedded defaults; ``config/default.toml``
documents the same values (a test keeps the two equal).  ``load`` validates
every value and raises ``ConfigError`` naming the key, the value and what is
allowed, so a bad deployment stops at start-up instead of at the first request.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "SCREENSHOT_"


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
    log_level: str = _opt("info", choices=("debug", "info", "warning", "error"))
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


@dataclass(frozen=True)
class CaptureConfig:
    deadline_seconds: float = _opt(30.0, min=1, max=300)


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


@dataclass(frozen=True)
class PlanConfig:
    requests_per_second: float = _opt(1.0, min=0.001, max=100000)
    burst: int = _opt(1, min=1, max=100000)
    monthly_captures: int = _opt(100, min=0, max=10**12)
    concurrency: int = _opt(1, min=1, max=10000)
    max_queued_jobs: int = _opt(10, min=0, max=10**9)


def _default_plans() -> dict[str, PlanConfig]:
    return {
        "free": PlanConfig(),
        "pro": PlanConfig(
            requests_per_second=10, burst=20, monthly_captures=50000, concurrency=8, max_queued_jobs=1000
        ),
    }


@dataclass(frozen=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    state: StateConfig = field(default_factory=StateConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    plans: dict[str, PlanConfig] = field(default_factory=_default_plans)


# --------------------------------------------------------------------------- loading


def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from an optional TOML file (or ``SCREENSHOT_CONFIG``) plus env overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("SCREENSHOT_CONFIG") or None
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path!s} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path!s} is not valid TOML: {exc}") from None
    if "plans" not in data:
        # A file that defines [plans.*] defines the whole set; otherwise the
        # built-in plans stay and the environment adjusts or adds to them.
        data["plans"] = to_dict(_default_plans())
    _apply_env(data, environ)
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> Settings:
    return typing.cast(Settings, _build(Settings, data, ""))


def replace(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy with some keys changed, validated like a file (handy for tests and the CLI)."""
    merged = to_dict(settings)
    for name, values in sections.items():
        _deep_merge(merged.setdefault(name, {}), dict(values))
    return from_dict(merged)


def to_dict(settings: Any) -> Any:
    """Plain TOML-shaped data: tables for dataclasses and dicts, secrets as their text."""
    if dataclasses.is_dataclass(settings):
        return {f.name: to_dict(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    if isinstance(settings, dict):
        return {k: to_dict(v) for k, v in settings.items()}
    if isinstance(settings, list):
        return list(settings)
    if isinstance(settings, Secret):
        return str(settings)
    return settings


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = prefix + unknown[0]
        raise ConfigError(f"unknown config key {key!r}; known keys here: {', '.join(sorted(names))}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key = prefix + f.name
        hint = hints[f.name]
        raw = data[f.name]
        if cls is Settings and f.name == "plans":
            values["plans"] = _build_plans(raw)
        elif dataclasses.is_dataclass(hint):
            values[f.name] = _build(typing.cast(type, hint), raw, key + ".")
        else:
            values[f.name] = _coerce(key, raw, hint, f.metadata)
    built = cls(**values)
    return built


def _build_plans(raw: Any) -> dict[str, PlanConfig]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"plans must be a table of at least one [plans.NAME] section, got {raw!r}")
    plans: dict[str, PlanConfig] = {}
    for name, body in raw.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"plans.{name}: a plan name is letters, digits, '-' and '_'")
        base = to_dict(_default_plans().get(name, PlanConfig()))
        base.update(body if isinstance(body, Mapping) else {"": body})
        plans[name] = typing.cast(PlanConfig, _build(PlanConfig, base, f"plans.{name}."))
    return plans


def _coerce(key: str, raw: Any, hint: Any, rules: Mapping[str, Any]) -> Any:
    def bad(allowed: str) -> ConfigError:
        return ConfigError(f"{key} = {raw!r} is not allowed: {allowed}")

    if hint is bool:
        if not isinstance(raw, bool):
            raise bad("expected true or false")
        return raw
    if hint in (int, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (hint is int and not isinstance(raw, int)):
            raise bad(f"expected {'an integer' if hint is int else 'a number'}")
        lo, hi = rules.get("min"), rules.get("max")
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            raise bad(f"expected {'an integer' if hint is int else 'a number'} from {lo} to {hi}")
        return hint(raw)
    if hint in (str, Secret):
        if not isinstance(raw, str):
            raise bad("expected a string")
        choices = rules.get("choices")
        if choices and raw not in choices:
            raise bad(f"expected one of {', '.join(repr(c) for c in choices)}")
        return Secret(raw) if hint is Secret else raw
    if typing.get_origin(hint) is list:
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise bad("expected a list of strings")
        return list(raw)
    raise bad(f"unsupported type {hint}")  # pragma: no cover - a programming error


def _env_paths(cls: type, prefix: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every settable key as ENV_NAME -> path, e.g. STORAGE_S3_BUCKET -> (storage, s3, bucket)."""
    paths: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            paths.update(_env_paths(typing.cast(type, hints[f.name]), path))
        elif f.name != "plans":
            paths["_".join(path).upper()] = path
    return paths


_PLAN_FIELDS = sorted((f.name for f in dataclasses.fields(PlanConfig)), key=len, reverse=True)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    paths = _env_paths(Settings, ())
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "SCREENSHOT_CONFIG":
            continue
        rest = name[len(ENV_PREFIX):]
        path = paths.get(rest)
        if path is None and rest.startswith("PLANS_"):
            tail = rest[len("PLANS_"):]
            for plan_field in _PLAN_FIELDS:
                suffix = "_" + plan_field.upper()
                if tail.endswith(suffix) and len(tail) > len(suffix):
                    path = ("plans", tail[: -len(suffix)].lower(), plan_field)
                    break
        if path is None:
            raise ConfigError(f"environment variable {name} names no config key")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with the config file")
        node[path[-1]] = _parse_env_value(text)


def _parse_env_value(text: str) -> Any:
    """TOML literal when it parses as one (8000, true, ["a"]), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
