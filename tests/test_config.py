"""Configuration: documented defaults, file + environment, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from screenshot_service import config, config_loading

ROOT = Path(__file__).resolve().parent.parent


def test_default_toml_documents_exactly_the_embedded_defaults() -> None:
    assert config_loading.load(ROOT / "config" / "default.toml", {}) == config.Settings()


def test_example_configs_are_valid() -> None:
    for path in (ROOT / "config").glob("*.toml"):
        config_loading.load(path, {})


def test_environment_overrides_any_key() -> None:
    settings = config_loading.load(None, {
        "SCREENSHOT_SERVER_PORT": "9001",
        "SCREENSHOT_STORAGE_BACKEND": "s3",
        "SCREENSHOT_STORAGE_S3_BUCKET": "shots",
        "SCREENSHOT_EGRESS_ALLOW": '["10.0.0.5:8080"]',
        "SCREENSHOT_PLANS_FREE_MONTHLY_CAPTURES": "500",
        "SCREENSHOT_PLANS_GOLD_REQUESTS_PER_SECOND": "50",
        "SCREENSHOT_STATE_REDIS_URL": "redis://:pw@10.0.0.9:6379/1",
    })
    assert settings.server.port == 9001
    assert settings.storage.backend == "s3" and settings.storage.s3.bucket == "shots"
    assert settings.egress.allow == ["10.0.0.5:8080"]
    assert settings.plans["free"].monthly_captures == 500
    assert settings.plans["gold"].requests_per_second == 50
    assert "pro" in settings.plans
    assert "pw" not in repr(settings.state.redis)  # secrets never show in reprs


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[browser]\npool_size = 2\n")
    assert config_loading.load(None, {"SCREENSHOT_CONFIG": str(path)}).browser.pool_size == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[browser]\npool_size = 0", "browser.pool_size = 0 is not allowed: expected an integer from 1 to 64"),
        ("[storage]\nbackend = 'ftp'", "storage.backend = 'ftp' is not allowed: expected one of 'local', 's3'"),
        ("[server]\nport = 'eighty'", "server.port = 'eighty' is not allowed: expected an integer"),
        ("[storage.s3]\npresign_seconds = 999999", "storage.s3.presign_seconds = 999999"),
        ("[server]\nportt = 1", "unknown config key 'server.portt'"),
        ("[plans.free]\nburst = -1", "plans.free.burst = -1"),
        ("[egress]\nallow = '10.0.0.1'", "egress.allow = '10.0.0.1' is not allowed: expected a list of strings"),
        ("[[server]]", "server must be a table"),
        ("not toml =", "is not valid TOML"),
    ],
)
def test_bad_values_stop_with_a_message_naming_key_and_value(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as caught:
        config_loading.load(path, {})
    assert message in str(caught.value)


def test_unknown_environment_variable_is_an_error() -> None:
    with pytest.raises(config.ConfigError, match="SCREENSHOT_BROWSER_POOLSIZE names no config key"):
        config_loading.load(None, {"SCREENSHOT_BROWSER_POOLSIZE": "3"})


def test_bad_egress_entry_names_itself() -> None:
    from screenshot_service.egress.policy import EgressPolicy

    with pytest.raises(config.ConfigError, match="not-an-ip"):
        EgressPolicy.from_config(config.EgressConfig(allow=["not-an-ip"]))
