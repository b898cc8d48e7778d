"""``compare_to`` in a capture (SPEC §3.3): find the baseline, compare, record the capture.

The baseline is found before the page is rendered (a bad id is a 400 before any browser work)
and its file is read meanwhile.  After the render, a new image with the baseline's very bytes
changed nothing (no decoding at all); otherwise both are decoded (or found decoded: a monitor's
baseline was the last comparison's new image), compared and the marked image made in threads,
so the event loop never waits on numpy or Pillow.  With no pixel changed
there is nothing to mark: ``image_url`` is the capture itself, not a faded copy of it.  Every
capture of a key is then recorded (capture_records.py) before its answer, so an immediately
following ``compare_to=previous`` or ``compare_to=<id>`` finds it.

Baselines are images the service holds: a capture uploaded only to the caller's own bucket is
recorded (its id is known) but can be neither a ``previous`` baseline nor named as one, and a
capture whose warnings say it may show the wrong page (diff_options.NOT_A_BASELINE) is never
``previous``, though naming it by id is the caller's choice and allowed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import InvalidParameter
from ..metrics import Metrics
from ..storage.base import Storage, StoredObject
from ..storage.errors import StorageError
from . import diff_engine
from .capture_records import CaptureRecord, CaptureRecords
from .decoded_images import DecodedImages
from .diff_options import NOT_A_BASELINE, PREVIOUS
from .facts import CaptureWarning
from .option_vocabulary import IMAGE_FORMATS
from .options import CaptureOptions
from .result import CaptureResult, iso_ms
from .scalar_parsers import Bad

log = logging.getLogger("screenshot_service.capture")

NO_BASELINE = CaptureWarning(
    "no_baseline", "nothing to compare with yet: no earlier good capture of this page with these "
    "options for this key (or it expired); diff is null")


@dataclass(frozen=True)
class Baseline:
    record: CaptureRecord
    data: bytes | None  # the stored file; None: it could not be read (swept, storage away)


@dataclass(frozen=True)
class Compared:
    """A comparison made, and its marked image (not yet stored; None when no pixel changed:
    there is nothing to mark, and ``image_url`` is then the capture's own)."""

    baseline: CaptureRecord
    comparison: diff_engine.Comparison
    marked: bytes | None

    def to_json(self, image: StoredObject) -> dict[str, Any]:
        found = self.comparison
        body: dict[str, Any] = {
            "baseline": {"id": self.baseline.id, "captured_at": iso_ms(self.baseline.captured_at)},
            "changed_pixels": found.changed_pixels,
            "changed_ratio": found.changed_ratio,
            "regions": [box.to_json() for box in found.regions],
            "image_url": image.url,
        }
        if found.size_changed:
            body["size_changed"] = True
        return body


class VisualChange:
    def __init__(self, records: CaptureRecords, storage: Storage, metrics: Metrics, retention: timedelta) -> None:
        self.records = records
        self.storage = storage
        self.metrics = metrics
        # The stored files' retention, not their URLs' expiry (a presigned S3 link lasts a day).
        self.retention = retention
        self.decoded = DecodedImages()  # the next comparison's baseline is usually this one's image

    async def find(self, opts: CaptureOptions, account: str) -> CaptureRecord | None:
        """The baseline ``compare_to`` names, None when ``previous`` has none yet; a 400 on
        ``compare_to`` for an id this key cannot use (whether it exists is not told)."""
        if opts.compare_to == PREVIOUS:
            return await self.records.previous(account, opts.baseline_fingerprint(account))
        assert opts.compare_to is not None
        record = await self.records.get(account, opts.compare_to)
        if record is None:
            raise _bad("no capture with this id for this API key (unknown, another key's, or expired)")
        if not record.object_name:
            raise _bad("that capture went to your own S3 bucket only: the service holds no copy to compare with")
        if record.format not in IMAGE_FORMATS:
            raise _bad(f"that capture is a {record.format}, not an image")
        return record

    async def load(self, record: CaptureRecord) -> Baseline:
        """The baseline's file, read from our storage while the page renders."""
        try:
            found = await self.storage.get(record.object_name)
        except StorageError as error:  # the capture itself may still be stored: answered without a diff
            log.warning("baseline %s unreadable: %s", record.id, error.message)
            return Baseline(record, None)
        return Baseline(record, found[0] if found is not None else None)

    async def compare(self, baseline: Baseline | None, data: bytes, threshold: float) -> Compared | None:
        """``data`` (the new image) against ``baseline``; None when there is none to compare with."""
        if baseline is None or baseline.data is None:
            return None
        record = baseline.record
        if data == baseline.data:  # the same pixels make the same bytes: a monitor's usual run, no decode
            comparison = diff_engine.Comparison(0, record.width * record.height, False)
            marked = None
        else:
            try:
                old, new = await asyncio.gather(asyncio.to_thread(self.decoded.decode, baseline.data),
                                                asyncio.to_thread(self.decoded.decode, data))
            except (OSError, ValueError) as error:  # a stored file we cannot decode is no baseline
                log.warning("baseline %s unreadable: %s", record.id, type(error).__name__)
                return None

            def work() -> tuple[diff_engine.Comparison, bytes | None]:
                found = diff_engine.compare(old, new, threshold)
                return found, diff_engine.marked_image(new, found.mask) if found.changed_pixels else None

            comparison, marked = await asyncio.to_thread(work)
        self.metrics.observe_diff(comparison.changed_ratio)
        return Compared(record, comparison, marked)

    async def record(self, result: CaptureResult, opts: CaptureOptions, account: str, *, held: bool) -> None:
        """Record ``result`` (``held``: its image is in our storage); a good image held by the
        service becomes this page's `previous` baseline."""
        good = held and result.format in IMAGE_FORMATS and not NOT_A_BASELINE & set(result.warning_codes)
        record = CaptureRecord(
            id=result.id, account=account, object_name=result.stored.name if held else "", format=result.format,
            width=result.width, height=result.height, captured_at=result.captured_at,
            expires_at=result.captured_at + self.retention, baseline=good)
        await self.records.put(record, opts.baseline_fingerprint(account) if good else None)


def _bad(why: str) -> InvalidParameter:
    return InvalidParameter.fields({"compare_to": str(Bad(why))})
