"""Where a value comes from: moved keys under their old names, and (``_FILE``) secrets in files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from screenshot_service import config, config_loading


def test_server_log_level_still_sets_the_level_it_moved_to(tmp_path: Path) -> None:
    old = tmp_path / "old.toml"
    old.write_text('[server]\nlog_level = "debug"\n')
    assert config_loading.load(old, {}).log.level == "debug"
    assert config_loading.load(None, {"SCREENSHOT_SERVER_LOG_LEVEL": "error"}).log.level == "error"
    assert config_loading.load(None, {"SCREENSHOT_LOG_LEVEL": "warning"}).log.level == "warning"
    assert config_loading.load(old, {"SCREENSHOT_LOG_LEVEL": "debug"}).log.level == "debug"  # the same: no clash
    with pytest.raises(config.ConfigError, match=r"server.log_level \(the old name of log.level\) and log.level"):
        config_loading.load(old, {"SCREENSHOT_LOG_LEVEL": "warning"})
    with pytest.raises(config.ConfigError, match=re.escape("log.level = 'loud' is not allowed")):
        config_loading.load(None, {"SCREENSHOT_SERVER_LOG_LEVEL": "loud"})
    with pytest.raises(config.ConfigError, match=re.escape("log.format = 'xml' is not allowed: expected one of 'text', 'json'")):
        config_loading.load(None, {"SCREENSHOT_LOG_FORMAT": "xml"})


SECRET = "s3cr3t-Value_1"


def test_a_file_variable_reads_the_value_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    crlf = tmp_path / "crlf"
    crlf.write_bytes(b"redis://:pw@10.0.0.9:6379/1\r\n")
    port = tmp_path / "port"
    port.write_text("9001\n")
    digits = tmp_path / "digits"
    digits.write_text("12345")  # a string key keeps a number-looking secret as text
    quota = tmp_path / "quota"
    quota.write_text("500\n")
    settings = config_loading.load(None, {
        "SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE": str(secret),
        "SCREENSHOT_STATE_REDIS_URL_FILE": str(crlf),
        "SCREENSHOT_SERVER_PORT_FILE": str(port),
        "SCREENSHOT_STORAGE_S3_ACCESS_KEY_ID_FILE": str(digits),
        "SCREENSHOT_PLANS_FREE_MONTHLY_CAPTURES_FILE": str(quota),
    })
    assert settings.storage.s3.secret_access_key == SECRET
    assert isinstance(settings.storage.s3.secret_access_key, config.Secret)
    assert settings.state.redis.url == "redis://:pw@10.0.0.9:6379/1"
    assert settings.server.port == 9001
    assert settings.storage.s3.access_key_id == "12345"
    assert settings.plans["free"].monthly_captures == 500


def test_a_string_key_set_to_a_number_looking_value_keeps_it_as_text() -> None:
    settings = config_loading.load(None, {"SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY": "12345",
                                          "SCREENSHOT_STORAGE_BACKEND": '"s3"'})
    assert settings.storage.s3.secret_access_key == "12345" and settings.storage.backend == "s3"


def test_a_key_set_both_ways_stops_start_up(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    with pytest.raises(config.ConfigError) as raised:
        config_loading.load(None, {"SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY": "other",
                                   "SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE": str(secret)})
    assert str(raised.value) == ("both SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY and "
                                 "SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE are set: set one of them")


@pytest.mark.parametrize("problem", ["missing", "directory", "unreadable", "binary"])
def test_an_unreadable_file_stops_start_up_naming_the_variable_not_the_secret(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "secret"
    if problem == "directory":
        path.mkdir()
    elif problem == "unreadable":
        path.write_text(SECRET)
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("root reads a file whatever its mode")
    elif problem == "binary":
        path.write_bytes(SECRET.encode() + b"\xff\xfe")
    with pytest.raises(config.ConfigError) as raised:
        config_loading.load(None, {"SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE": str(path)})
    message = str(raised.value)
    assert message.startswith("SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE: ") and str(path) in message
    assert SECRET not in message


def test_a_file_variable_for_no_key_is_refused() -> None:
    with pytest.raises(config.ConfigError, match="SCREENSHOT_STORAGE_S3_BUKET_FILE names no config key"):
        config_loading.load(None, {"SCREENSHOT_STORAGE_S3_BUKET_FILE": "/run/secrets/x"})


def test_serve_stops_with_the_clear_message(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    env = {**os.environ, "SCREENSHOT_STATE_REDIS_URL_FILE": str(tmp_path / "absent"),
           "SCREENSHOT_STORAGE_S3_SECRET_ACCESS_KEY_FILE": str(secret)}
    done = subprocess.run([sys.executable, "-m", "screenshot_service", "serve", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"configuration error: SCREENSHOT_STATE_REDIS_URL_FILE: cannot read the file "
                                   f"'{tmp_path / 'absent'}': No such file or directory")
