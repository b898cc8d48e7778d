"""Chromium lifecycle and the warm context pool (the only users of pyppeteer besides capture.render)."""

from . import compat  # noqa: F401  - patches pyppeteer before anything uses it
