"""Chromium lifecycle and the warm context pool (the only user of pyppeteer)."""
