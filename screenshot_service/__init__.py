"""Self-hosted website screenshot API on a warm headless Chromium pool."""

__version__ = "0.1.0"
