"""Chromium lifecycle and the warm context pool (the only users of pyppeteer besides capture.render)."""
