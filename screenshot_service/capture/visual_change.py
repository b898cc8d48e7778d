"""``compare_to`` in a capture (SPEC §3.3): find the baseline, compare, record the capture.

The baseline is found before the page is rendered (a bad id is a 400 before any browser work)
and its image is read and decoded meanwhile, in a thread; after the render the new image is
decoded, compared and the marked image made in a thread too, so the event loop never waits on
numpy or Pillow.  Every capture of a key is then recorded (capture_records.py) before its
answer, so an immediately following ``compare_to=previous`` or ``compare_to=<id>`` finds it.

Baselines are images the service holds: a capture uploaded only to the caller's own bucket is
recorded (its id is known) but can be neither a ``previous`` baseline nor named as one, and a
capture whose warnings say it may show the wrong page (diff_options.NOT_A_BASELINE) is never
``previous``, though naming it by id is the caller's choice and allowed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from ..metrics import Metrics
from ..storage.base import Storage, StoredObject
from ..storage.errors import StorageError
from . import diff_engine
from .capture_records import CaptureRecord, CaptureRecords
from .diff_options import NOT_A_BASELINE, PREVIOUS
from .facts import CaptureWarning
from .options import CaptureOptions
from .result import CaptureResult, iso_ms
from .scalar_parsers import Bad

log = logging.getLogger("screenshot_service.capture")

IMAGE_FORMATS = ("png", "jpeg", "webp")
NO_BASELINE = CaptureWarning(
    "no_baseline", "nothing to compare with yet: no earlier good capture of this page with these "
    "options for this key (or it expired); diff is null")


@dataclass(frozen=True)
class Baseline:
    record: CaptureRecord
    pixels: diff_engine.Pixels | None  # None: its image could not be read (swept, unreadable)
    data: bytes = b""  # the stored file: a new capture with the very same bytes changed nothing
    unchanged: bytes = b""  # the marked image of such a capture (no red), made while the page renders


@dataclass(frozen=True)
class Compared:
    """A comparison made, and its marked image (not yet stored)."""

    baseline: CaptureRecord
    comparison: diff_engine.Comparison
    marked: bytes

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
    def __init__(self, records: CaptureRecords, storage: Storage, metrics: Metrics) -> None:
        self.records = records
        self.storage = storage
        self.metrics = metrics

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
        """The baseline's pixels (read from our storage, decoded in a thread)."""
        try:
            found = await self.storage.get(record.object_name)
        except StorageError as error:  # the capture itself may still be stored: answered without a diff
            log.warning("baseline %s unreadable: %s", record.id, error.message)
            return Baseline(record, None)
        if found is None:
            return Baseline(record, None)
        data = found[0]

        def prepare() -> Baseline:
            pixels = diff_engine.decode(data)
            return Baseline(record, pixels, data, diff_engine.marked_image(pixels, diff_engine.NOTHING))

        try:
            return await asyncio.to_thread(prepare)
        except (OSError, ValueError) as error:  # a file we cannot decode is no baseline
            log.warning("baseline %s unreadable: %s", record.id, type(error).__name__)
            return Baseline(record, None)

    async def compare(self, baseline: Baseline | None, data: bytes, threshold: float) -> Compared | None:
        if baseline is None or baseline.pixels is None:
            return None
        old = baseline.pixels

        def work() -> tuple[diff_engine.Comparison, bytes]:
            if data == baseline.data:  # Chromium paints the same pixels into the same bytes: a monitor's usual case
                return diff_engine.unchanged(old), baseline.unchanged
            new = diff_engine.decode(data)
            comparison = diff_engine.compare(old, new, threshold)
            return comparison, diff_engine.marked_image(new, comparison.mask)

        comparison, marked = await asyncio.to_thread(work)
        self.metrics.observe_diff(comparison.changed_ratio)
        return Compared(baseline.record, comparison, marked)

    async def record(self, result: CaptureResult, opts: CaptureOptions, account: str, *, held: bool) -> None:
        """Record ``result`` (``held``: its image is in our storage); a good image held by the
        service becomes this page's `previous` baseline."""
        good = held and result.format in IMAGE_FORMATS and not NOT_A_BASELINE & set(result.warning_codes)
        record = CaptureRecord(
            id=result.id, account=account, object_name=result.stored.name if held else "", format=result.format,
            width=result.width, height=result.height, captured_at=result.captured_at,
            expires_at=result.stored.expires_at, baseline=good)
        await self.records.put(record, opts.baseline_fingerprint(account) if good else None)


def _bad(why: str) -> InvalidParameter:
    return InvalidParameter.fields({"compare_to": str(Bad(why))})
