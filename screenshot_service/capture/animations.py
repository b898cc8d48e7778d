"""``disable_animations``: deterministic pixels.

Every animation the page has (``document.getAnimations()`` covers CSS
animations, CSS transitions and Web Animations) is jumped to its end state; an
infinite one has no end, so it is paused at its start.  Videos are paused on
their first frame, SVG (SMIL) animations at time 0, and a style sheet makes
every later transition instant, smooth scrolling instant and the text caret
transparent.  ``freeze`` runs after the page is tidied and again just before
the capture, so animations started in between (a full-page reveal scrolls
content into view, and pages animate what comes into view) are caught too.

Not frozen: pages that move things with their own timers or
``requestAnimationFrame`` loops; that is script, not animation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import readback

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver

STILL_CSS = """*, *::before, *::after {
  transition-duration: 0s !important; transition-delay: 0s !important;
  caret-color: transparent !important; scroll-behavior: auto !important;
}"""

FRAME_WAIT = 1.0  # seconds for the frozen state to be painted, at most (a page can cancel our timers)

_FREEZE_JS = """() => {
  let frozen = 0;
  for (const a of document.getAnimations({subtree: true})) {
    try {
      const timing = a.effect ? a.effect.getTiming() : {};
      if (timing.iterations === Infinity) {
        // The start of the first iteration, whatever delay (even a negative one) the page gave.
        a.effect.updateTiming({delay: 0, iterationStart: 0});
        a.pause();
        a.currentTime = 0;
      } else {
        a.finish();
      }
      frozen++;
    } catch (e) {
      try { a.pause(); a.currentTime = 0; } catch (e2) {}
    }
  }
  for (const v of document.querySelectorAll('video')) {
    try { v.autoplay = false; v.pause(); v.currentTime = 0; } catch (e) {}
  }
  for (const svg of document.querySelectorAll('svg')) {
    try { svg.pauseAnimations(); svg.setCurrentTime(0); } catch (e) {}
  }
  return frozen;
}"""

_FRAME_JS = """() => new Promise(resolve => {
  // Let the frozen state reach the compositor; rAF may never fire in an odd page state.
  const done = () => resolve(true);
  requestAnimationFrame(() => requestAnimationFrame(done));
  setTimeout(done, 100);
})"""


async def freeze(page: PageDriver, *, style: bool = True) -> int:
    """Jump every animation to its end (infinite ones: their start); how many there were.

    Script errors (a page replacing its document under us) propagate: the capture would
    not be the deterministic one the caller asked for.
    """
    frozen = readback.integer(await page.evaluate(_FREEZE_JS), low=0, high=2**31, what="animations frozen")
    if style:
        # After the jump: a running transition keeps the duration it started with.
        await page.add_style_tag(STILL_CSS)
    await page.evaluate(_FRAME_JS, within=FRAME_WAIT)
    return frozen
