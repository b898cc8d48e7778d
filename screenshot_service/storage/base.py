"""The one storage interface shared by the local and S3 backends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}
# A format's file name extension, where it is not the format's own name.
_OWN_EXTENSIONS = {"markdown": "md", "text": "txt"}  # every other format is its own extension


def extension_of(fmt: str) -> str:
    """The file extension a stored object of format ``fmt`` is named with."""
    return _OWN_EXTENSIONS.get(fmt, fmt)


TYPE_BY_EXTENSION = {extension_of(fmt): content_type for fmt, content_type in CONTENT_TYPES.items()}


@dataclass(frozen=True)
class StoredObject:
    """Where a capture now lives and until when its URL works."""

    name: str
    url: str
    expires_at: datetime  # timezone-aware UTC
    size: int
    content_type: str


class Storage(Protocol):
    async def put(self, name: str, data: bytes, content_type: str, *, base_url: str = "") -> StoredObject:
        """Store ``data`` under ``name``; ``base_url`` is the request's public base for
        backends that serve files themselves (local). Raises storage.errors.StorageError."""
        ...

    async def get(self, name: str) -> tuple[bytes, str] | None:
        """The bytes and content type of a stored capture, or None (used by cache and files)."""
        ...


def new_object_name(fmt: str) -> str:
    """An unguessable name: 160 random bits, URL-safe, with the format's extension."""
    return f"{secrets.token_urlsafe(20)}.{extension_of(fmt)}"


def content_type_of(name: str) -> str:
    """The content type of a stored object, from its name's extension."""
    return TYPE_BY_EXTENSION[name.rsplit(".", 1)[1]]
