"""Reading Settings: TOML file + ``SCREENSHOT_<SECTION>_<KEY>`` environment overrides.

``SCREENSHOT_<SECTION>_<KEY>_FILE`` names a file holding the value instead (container and
Kubernetes secrets), so a secret need not sit in the environment.

``load`` validates every value against the rules config.py declares and raises
``ConfigError`` naming the key, the value and what is allowed, so a bad deployment
stops at start-up instead of at the first request.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import ConfigError, PlanConfig, Secret, Settings, default_plans
from .config_proxies import build_proxies, check_plan_pools, check_pool_addresses

ENV_PREFIX = "SCREENSHOT_"
FILE_SUFFIX = "_FILE"
# Keys that moved: the old name still works, in files and environments written for it.
MOVED_KEYS = {("server", "log_level"): ("log", "level")}


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
        data["plans"] = to_dict(default_plans())
    _apply_env(data, environ)
    _move_keys(data)
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> Settings:
    settings = typing.cast(Settings, _build(Settings, data, ""))
    _check_cluster_database(settings)
    check_plan_pools(settings)
    check_pool_addresses(settings)
    return settings


def _check_cluster_database(settings: Settings) -> None:
    redis = settings.state.redis
    database = urllib.parse.urlsplit(str(redis.url)).path.strip("/") or "0"
    if redis.cluster and database != "0":
        # The URL may carry a password: name the database only.
        raise ConfigError(f"state.redis.url names database {database!r}, but a Redis Cluster has only "
                          "database 0 (state.redis.cluster = true): end the URL with /0 or nothing")


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
        return [to_dict(v) for v in settings]
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
        elif cls is Settings and f.name == "proxies":
            values["proxies"] = build_proxies(raw)
        elif dataclasses.is_dataclass(hint):
            values[f.name] = _build(typing.cast(type, hint), raw, key + ".")
        else:
            values[f.name] = _coerce(key, raw, hint, f.metadata)
    return cls(**values)


def _build_plans(raw: Any) -> dict[str, PlanConfig]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"plans must be a table of at least one [plans.NAME] section, got {raw!r}")
    plans: dict[str, PlanConfig] = {}
    for name, body in raw.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"plans.{name}: a plan name is letters, digits, '-' and '_'")
        base = to_dict(default_plans().get(name, PlanConfig()))
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
        elif f.name not in ("plans", "proxies"):
            paths["_".join(path).upper()] = path
    return paths


def _text_paths(cls: type, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The keys whose value is a string: environment text that reads as a TOML number or boolean
    stays text for them (a password ``12345`` or ``true``)."""
    hints = typing.get_type_hints(cls)
    found: set[tuple[str, ...]] = set()
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            found |= _text_paths(typing.cast(type, hints[f.name]), (*prefix, f.name))
        elif hints[f.name] in (str, Secret):
            found.add((*prefix, f.name))
    return found


_PLAN_FIELDS = sorted((f.name for f in dataclasses.fields(PlanConfig)), key=len, reverse=True)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    paths = _env_paths(Settings, ())
    paths.update({"_".join(old).upper(): old for old in MOVED_KEYS})
    texts = _text_paths(Settings, ()) | set(MOVED_KEYS)
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "SCREENSHOT_CONFIG":
            continue
        rest = name[len(ENV_PREFIX):]
        path = _key_path(rest, paths)
        from_file = path is None and rest.endswith(FILE_SUFFIX)
        if from_file:
            path = _key_path(rest[: -len(FILE_SUFFIX)], paths)
            if path is not None:
                text = _secret_file(name, text, environ)
        if path is None:
            raise ConfigError(f"environment variable {name} names no config key")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with the config file")
        value = text if from_file and path in texts else _parse_env_value(text)  # a file holds the value itself
        node[path[-1]] = text if path in texts and not isinstance(value, str) else value


def _key_path(name: str, paths: Mapping[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The key ``name`` (``SCREENSHOT_`` taken off) sets, plans' own among them."""
    if name in paths:
        return paths[name]
    if name.startswith("PROXIES_") and name.endswith("_URLS") and len(name) > len("PROXIES__URLS"):
        return ("proxies", name[len("PROXIES_"):-len("_URLS")].lower(), "urls")
    if name.startswith("PLANS_"):
        tail = name[len("PLANS_"):]
        for plan_field in _PLAN_FIELDS:
            suffix = "_" + plan_field.upper()
            if tail.endswith(suffix) and len(tail) > len(suffix):
                return ("plans", tail[: -len(suffix)].lower(), plan_field)
    return None


def _secret_file(name: str, file_path: str, environ: Mapping[str, str]) -> str:
    """The value ``name`` (``SCREENSHOT_..._FILE``) points at, without its trailing line break.
    Errors name the variable and the file, never what the file holds."""
    direct = name[: -len(FILE_SUFFIX)]
    if direct in environ:
        raise ConfigError(f"both {direct} and {name} are set: set one of them")
    try:
        return Path(file_path).read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: the file {file_path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the file {file_path!r}: {exc.strerror or exc}") from None


def _move_keys(data: dict[str, Any]) -> None:
    for old, new in MOVED_KEYS.items():
        section = data.get(old[0])
        if not isinstance(section, dict) or old[1] not in section:
            continue
        value = section.pop(old[1])
        target = data.setdefault(new[0], {})
        if not isinstance(target, dict):
            continue  # from_dict names the bad table
        if new[1] in target and target[new[1]] != value:
            raise ConfigError(f"{'.'.join(old)} (the old name of {'.'.join(new)}) and {'.'.join(new)} "
                              "are both set, to different values: set only " + ".".join(new))
        target[new[1]] = value


def _parse_env_value(text: str) -> Any:
    """TOML literal when it parses as one (8000, true, ["a"]), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
