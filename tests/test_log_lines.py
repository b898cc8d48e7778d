"""One log record is one line, whatever text it carries: a page's thrown error or a caller's
header cannot forge a record of its own (the handler `serve` installs)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from screenshot_service import log_context
from screenshot_service.observability import log_handler

FORGED = '2026-12-07 10:00:00,000 INFO screenshot_service.access {"request_id": "FORGED-BY-PAGE"}'


def _log_lines(emit: Callable[[logging.Logger], object]) -> list[str]:
    stream = io.StringIO()
    handler = log_handler()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logger = logging.getLogger("screenshot_service.test_log_lines")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_a_message_with_line_breaks_stays_one_line() -> None:
    breaks = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
    lines = _log_lines(lambda log: [log.warning("page said: %s", f"boom{b}{FORGED}") for b in breaks])
    assert len(lines) == len(breaks)
    assert all(" WARNING screenshot_service.test_log_lines page said: boom" in line for line in lines), lines
    assert not any(line.startswith("2026-12-07 10:00:00") for line in lines)
    assert lines[0].endswith("boom\\n" + FORGED)


def test_a_traceback_carrying_page_text_stays_one_line() -> None:
    def emit(log: logging.Logger) -> None:
        try:
            raise RuntimeError(f"Error: boom\n{FORGED}")
        except RuntimeError:
            log.exception("capture failed")
        log.info("next record")

    lines = _log_lines(emit)
    assert len(lines) == 2, lines
    assert "capture failed\\nTraceback (most recent call last):" in lines[0]
    assert "RuntimeError: Error: boom\\n" + FORGED in lines[0]
    assert lines[1].endswith("INFO screenshot_service.test_log_lines next record")


def test_tabs_and_unicode_text_are_kept_as_they_are() -> None:
    lines = _log_lines(lambda log: log.info("a\tb é 日本"))
    assert lines == [lines[0]] and lines[0].endswith("a\tb é 日本")


def test_a_record_names_the_request_and_job_it_was_written_for() -> None:
    def emit(log: logging.Logger) -> None:
        with log_context.bound(log_context.REQUEST_ID, "req-1"):
            log.info("for a request")
            with log_context.bound(log_context.JOB_ID, "job_1"):
                log.info("for its job")
        log.info("for nobody")

    lines = _log_lines(emit)
    assert lines[0].endswith(" INFO screenshot_service.test_log_lines request_id=req-1 for a request")
    assert lines[1].endswith(" INFO screenshot_service.test_log_lines request_id=req-1 job_id=job_1 for its job")
    assert lines[2].endswith(" INFO screenshot_service.test_log_lines for nobody")
