"""The capture storage's exceptions (local directory, S3, a customer's bucket)."""

from __future__ import annotations

from ..faults import LayerError


class StorageError(LayerError):
    """The store could not take or give back an object (unreachable, refused, timed out)."""


class BucketRejected(LayerError):
    """A customer's own bucket, as the request gave it, cannot be used (missing, misnamed, in
    another region, their credentials refused): the caller's parameter is wrong, not our storage.
    ``fields`` names each request field at fault."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(f"your bucket was rejected: {', '.join(sorted(fields))}", details={"fields": fields})
        self.fields = fields
