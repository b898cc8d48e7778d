"""Where a value comes from: moved keys under their old names, and (``_FILE``) secrets in files."""

from __future__ import annotations

import re
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
