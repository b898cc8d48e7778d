"""Recently decoded images, by their file's digest, so a page compared again decodes only its
new capture.

A monitor compares each run with the one before, and a caller may compare every capture with
one fixed baseline: in both the baseline's pixels were decoded moments ago (as the new image of
the previous comparison, or as this same baseline).  Keyed by the file's bytes, not the capture
id, so an unchanged run (the same bytes as the run before) finds the pixels of the last run
that changed.  Bounded by the pixels' bytes, least recently used out first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from . import diff_engine

# Two 1280 x 16384 RGBA pages are 168 MB; this keeps the last few tall pages (or hundreds of
# viewports) of a process on the 24 GiB, 2-core machine the service is sized for.
MAX_BYTES = 512 * 1024 * 1024


class DecodedImages:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._images: OrderedDict[bytes, diff_engine.Pixels] = OrderedDict()
        self._lock = threading.Lock()  # decodes run in worker threads

    def decode(self, data: bytes) -> diff_engine.Pixels:
        """``data``'s pixels (read-only: they may be shared with later comparisons)."""
        key = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            found = self._images.get(key)
            if found is not None:
                self._images.move_to_end(key)
                return found
        pixels = diff_engine.decode(data)
        pixels.flags.writeable = False
        if pixels.nbytes <= self.max_bytes:
            with self._lock:
                if key not in self._images:
                    self._images[key] = pixels
                    self.held_bytes += pixels.nbytes
                while self.held_bytes > self.max_bytes:
                    _, dropped = self._images.popitem(last=False)
                    self.held_bytes -= dropped.nbytes
        return pixels

    def __len__(self) -> int:
        return len(self._images)
