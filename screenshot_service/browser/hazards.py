"""Things a hostile or careless page does to a headless browser, neutralised.

alert/confirm/prompt are dismissed (they would block the renderer forever),
beforeunload is accepted so navigation never stalls, and any popup a page opens
is closed at once.  A crashed renderer is only logged here: pyppeteer reports it
as an ``error`` event, which pyee raises when nobody listens — inside the
DevTools reader, where it would drop the connection and with it the whole
browser and every tenant's capture (page_driver.PageDriver.crashed tells the lease).  Downloads are denied per context (driver.BrowserDriver.new_context).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from pyppeteer.browser import Browser
from pyppeteer.dialog import Dialog
from pyppeteer.page import Page
from pyppeteer.target import Target

log = logging.getLogger("screenshot_service.browser")


ANSWER_BOUND = 5.0  # seconds for a dialog answer or a popup close: a browser that takes longer is hung
# Fire-and-forget answers are kept here until done, so none is garbage-collected mid-flight.
_pending: set[asyncio.Future[None]] = set()


def _keep(coro: Awaitable[None]) -> None:
    future = asyncio.ensure_future(coro)
    _pending.add(future)
    future.add_done_callback(_pending.discard)


def guard_page(page: Page) -> None:
    page.on("dialog", lambda dialog: _keep(_answer(dialog)))
    page.on("error", lambda error: log.info("a page's renderer died: %s", error))


async def _answer(dialog: Dialog) -> None:
    with contextlib.suppress(Exception):
        if dialog.type == "beforeunload":
            await asyncio.wait_for(dialog.accept(), ANSWER_BOUND)  # leaving the page must never be blocked
        else:
            await asyncio.wait_for(dialog.dismiss(), ANSWER_BOUND)


def watch_popups(browser: Browser) -> None:
    browser.on("targetcreated", lambda target: _close_if_popup(browser, target))


def _close_if_popup(browser: Browser, target: Target) -> None:
    # Our own pages have no opener; anything a page opened (window.open,
    # target=_blank) does, and is closed before it can load.
    if target.type == "page" and target._targetInfo.get("openerId"):
        _keep(_close_target(browser, target._targetId))


async def _close_target(browser: Browser, target_id: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(browser._connection.send("Target.closeTarget", {"targetId": target_id}), ANSWER_BOUND)
