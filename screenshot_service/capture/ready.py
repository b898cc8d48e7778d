"""``wait_until=ready``: wait until the page has really settled, within a bound.

Ready means, at one and the same poll: no request in flight for ``NETWORK_QUIET``
seconds (DevTools Network events, see network.NetworkTracker), ``document.fonts``
not loading, every ``<img>`` complete and decoded (broken ones count as settled:
they will not get better, ``images_broken`` reports them), and no layout shift
nor change of the document's size for ``LAYOUT_QUIET_MS``.  Lazy images far
from the viewport are not waited for: they would never load without scrolling.

The wait never takes the capture's deadline: it ends by ``end`` and reports the
conditions still unmet, and the page is captured anyway with ``ready_timeout``.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from ..browser.driver_errors import ProtocolError, ScriptError
from . import readback

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .network import NetworkTracker

NETWORK_QUIET = 0.5  # seconds without a request in flight
LAYOUT_QUIET_MS = 300  # no layout shift or size change for this long
POLL = 0.1  # seconds between checks
READY_DEFAULT = 10.0  # seconds of waiting when the caller gives no deadline
RESERVE_MIN = 2.0  # seconds always left to the capture and storage after the wait ...
RESERVE_SHARE = 0.35  # ... or this share of the time left, whichever is more
CONDITIONS = ("network", "fonts", "images", "layout")

# One probe per poll; the first installs a layout-shift observer kept on the window of the service's
# isolated world (one per document, out of the page's reach).
_STATE_JS = """() => {
  const KEY = '__screenshotServiceReady';
  let s = window[KEY];
  if (!s) {
    s = window[KEY] = {last: performance.now(), size: '', decoded: new WeakSet(), decoding: new WeakSet()};
    try {
      new PerformanceObserver(list => { if (list.getEntries().length) s.last = performance.now(); })
        .observe({type: 'layout-shift', buffered: true});
    } catch (e) {}
  }
  const root = document.documentElement;
  const size = root ? root.scrollWidth + 'x' + root.scrollHeight : '';
  if (size !== s.size) { s.size = size; s.last = performance.now(); }
  const near = img => { const r = img.getBoundingClientRect();
    return r.bottom >= -innerHeight && r.top <= 2 * innerHeight; };
  let pending = 0;
  for (const img of document.images) {
    if (!(img.currentSrc || img.getAttribute('src'))) continue;
    if (!img.complete) { if (img.loading !== 'lazy' || near(img)) pending++; continue; }
    if (img.naturalWidth === 0 || s.decoded.has(img)) continue;
    pending++;
    if (!s.decoding.has(img)) {
      s.decoding.add(img);
      img.decode().then(() => s.decoded.add(img), () => s.decoded.add(img));
    }
  }
  return {fonts: document.fonts ? document.fonts.status : 'loaded', images: pending,
          still: performance.now() - s.last, ready: document.readyState};
}"""


def budget_end(deadline: float | None) -> float:
    """Loop time by which the wait gives up, leaving the capture its share of the deadline."""
    now = asyncio.get_running_loop().time()
    if deadline is None:
        return now + READY_DEFAULT
    left = deadline - now
    return now + max(0.2, left - max(RESERVE_MIN, left * RESERVE_SHARE))


async def wait_ready(page: PageDriver, tracker: NetworkTracker, end: float) -> list[str]:
    """Wait until every condition holds at once, or ``end`` (loop time); the conditions still unmet."""
    loop = asyncio.get_running_loop()
    unmet: list[str] = list(CONDITIONS)
    while True:
        try:
            async with asyncio.timeout_at(max(end, loop.time() + POLL)):
                state = _settled(await page.evaluate(_STATE_JS))
        except TimeoutError:  # the page's main thread is busy: it has not settled either
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return unmet
        except (ProtocolError, ScriptError):  # the document is being replaced (a script navigation)
            state = _UNSETTLED
        now = loop.time()
        unmet = ["network"] if tracker.inflight or now - tracker.changed < NETWORK_QUIET else []
        unmet.extend(condition for condition in CONDITIONS[1:] if not state[condition])
        if not unmet or now >= end:
            return unmet
        await asyncio.sleep(min(POLL, max(0.0, end - now)))


_UNSETTLED = {"fonts": False, "images": False, "layout": False}  # what a poll that could not run tells


def _settled(answer: object) -> dict[str, bool]:
    """Which of the page's own conditions hold, from one ``_STATE_JS`` answer (type-checked)."""
    state = readback.record(answer, ("fonts", "images", "still", "ready"))
    return {
        "fonts": readback.text(state["fonts"], limit=16, what="fonts") != "loading",
        "images": readback.integer(state["images"], low=0, high=2**31, what="images") == 0,
        "layout": (readback.number(state["still"], low=-math.inf, high=math.inf, what="still") >= LAYOUT_QUIET_MS
                   and readback.text(state["ready"], limit=16, what="ready") != "loading"),
    }
