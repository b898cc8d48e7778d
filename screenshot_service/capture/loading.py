"""Load the main document, and follow the navigations the page starts itself until the capture begins.

The first document comes from the URL (``goto``) or the caller's ``html``.  After it, a script,
a form or a meta refresh may take the main frame elsewhere, before or in the middle of the
service's own steps (which then fail: their document went away).  ``follow`` waits for the new
document as ``wait_until`` says and judges it like the first: the egress proxy's verdict
(navigation_watch.py), a download, its HTTP status (checks.http_status, so ``page.final_url``
and the ``http_error`` warning or ``fail_on_http_error`` are the new document's).  ``steadily``
runs a step on a document that holds still, and runs it again on the next document when the
page navigated meanwhile.

A page may take the main frame to MAX_PAGE_NAVIGATIONS new documents; one more is a 502
``target_unreachable`` (a page that navigates for ever), and the capture's deadline bounds
every wait (a navigation that never settles is the usual 504).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ..browser.driver_errors import DriverError, NavigationFailed
from ..egress.http1 import REFUSED, UNREACHABLE
from ..egress.urls import host_of
from ..errors import BlockedTarget, TargetUnreachable
from . import blocking, checks
from .navigation_watch import classify

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

log = logging.getLogger("screenshot_service.capture")

T = TypeVar("T")

# New documents a page may navigate its main frame to by itself (browsers follow at most 20
# HTTP redirects; a chain of script navigations gets the same allowance).
MAX_PAGE_NAVIGATIONS = 20

_LOADED_JS = """(wanted) => new Promise(resolve => {
  const ready = () => wanted === 'domcontentloaded' ? document.readyState !== 'loading'
                                                    : document.readyState === 'complete';
  if (ready()) return resolve();
  document.addEventListener('readystatechange', () => ready() && resolve());
  window.addEventListener('load', () => resolve(), {once: true});
})"""


async def load(session: CaptureSession, opts: CaptureOptions) -> None:
    """The first document, waited for as ``wait_until`` says (``follow`` judges it)."""
    if opts.html is not None:
        await _load_html(session, opts)
        return
    assert opts.url is not None
    _refuse_listed_target(opts)
    page = session.page
    try:
        # ready: the document first, then the conditions of capture/ready.py, within a bound
        await _goto(session, opts.url, "domcontentloaded" if opts.wait_until == "ready" else opts.wait_until)
    except NavigationFailed as exc:
        if page.main_frame_id in session.network.downloads:  # downloads are denied per context (browser/pool.py)
            raise _download(opts.url) from None
        raise _navigation_error(str(exc), opts.url) from None
    # Counted from the URL's document on: what the page does next is its own.  ``follow`` judges
    # it (before any wait: an error page will not grow the awaited selector), or the one the page
    # went on to before it loaded.
    session.documents.commits = 0


async def follow(session: CaptureSession, opts: CaptureOptions) -> None:
    """Until the main frame holds still on a document that is judged: each new one the page
    navigated to is waited for as ``wait_until`` says, then judged like the first."""
    documents = session.documents
    while True:
        await documents.until(lambda: not documents.navigating or documents.commits > MAX_PAGE_NAVIGATIONS)
        session.navigation.raise_if_failed()  # the egress proxy refused or could not reach it
        if session.page.main_frame_id in session.network.downloads:
            raise _download(session.network.downloads[session.page.main_frame_id])
        if documents.commits > MAX_PAGE_NAVIGATIONS:
            raise _kept_navigating(session)
        loader = documents.committed
        if loader is None or loader == documents.judged:
            return
        if not await documents.loaded(loader, opts.wait_until):
            continue  # gone again before it loaded: follow the next one
        documents.judged = loader
        if documents.commits:  # not the URL's own document
            log.info("followed a navigation the page started itself to %s", host_of(session.document.final_url))
        checks.http_status(session, opts)


async def steadily(session: CaptureSession, opts: CaptureOptions, step: Callable[[], Awaitable[T]]) -> T:
    """``step`` on the document the page ends on: run again on the next one when the page navigated
    while it ran (its scripts then fail with their document, which is no error of the capture)."""
    for _ in range(MAX_PAGE_NAVIGATIONS + 1):
        await follow(session, opts)
        try:
            result = await step()
        except DriverError:
            if not session.documents.moved() or session.page.crashed.done():
                raise
            continue
        if not session.documents.moved():
            return result
    raise _kept_navigating(session)


async def _goto(session: CaptureSession, url: str, wait_until: str) -> None:
    """``goto``, which waits for ever on a page that navigates on before it loads: given up
    once the page went to more documents than a capture follows."""
    documents = session.documents
    going = asyncio.ensure_future(session.page.goto(url, wait_until))
    too_many = asyncio.ensure_future(documents.until(lambda: documents.commits > MAX_PAGE_NAVIGATIONS + 1))
    try:
        await asyncio.wait((going, too_many), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (going, too_many):
            task.cancel()
        await asyncio.gather(going, too_many, return_exceptions=True)
    if not going.cancelled():
        going.result()  # NavigationFailed, or done
        return
    raise _kept_navigating(session)


async def _load_html(session: CaptureSession, opts: CaptureOptions) -> None:
    """Render caller-supplied HTML, then wait as ``wait_until`` says (setContent alone does not)."""
    assert opts.html is not None
    try:
        await session.page.set_content(opts.html)
        await session.page.evaluate(_LOADED_JS, "domcontentloaded" if opts.wait_until == "ready" else opts.wait_until)
    except DriverError:
        if not session.documents.moved():
            raise
        return  # the html navigated away: ``follow`` waits for that document instead
    if opts.wait_until.startswith("networkidle"):
        # No timeout of our own: the deadline around us ends a network that never goes quiet.
        allowed = 0 if opts.wait_until == "networkidle0" else 2
        await session.network.settle(float("inf"), quiet=0.5, allowed=allowed)


def _refuse_listed_target(opts: CaptureOptions) -> None:
    # Chromium's URL blocking covers subresources, not navigations: a page that is
    # itself on a chosen list is refused here (its frames and redirects by the proxy).
    blocker = blocking.host_blocker(opts)
    host = host_of(opts.url)
    if blocker is not None and blocker(host):
        raise BlockedTarget(f"{host} is on the block list you chose", details={"host": host})


def _download(url: str) -> TargetUnreachable:
    host = host_of(url) or "the target"
    return TargetUnreachable(f"{host} answered with a file download, not a page: there is nothing to capture",
                             details={"host": host})


def _kept_navigating(session: CaptureSession) -> TargetUnreachable:
    host = host_of(session.document.final_url) or "the page"
    return TargetUnreachable(
        f"{host} kept navigating: more than {MAX_PAGE_NAVIGATIONS} documents the page went to by itself",
        details={"host": host, "navigations": MAX_PAGE_NAVIGATIONS})


def _navigation_error(message: str, url: str) -> Exception:
    # Net errors are sorted in one place; a failed tunnel is told apart by the service's watch.
    host = host_of(url) or "the target"
    verdict = classify(message, host, None)
    if verdict == REFUSED:
        return BlockedTarget(f"the browser was not allowed to reach {host}", details={"host": host})
    if verdict == UNREACHABLE:
        reason = message.split(" at ")[0].strip()
        return TargetUnreachable(f"could not reach {host}: {reason}", details={"host": host})
    return TargetUnreachable(f"navigation to {host} failed: {message.split(' at ')[0]}")
