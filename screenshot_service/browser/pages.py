"""A new page in a browser context, on a flat session, with only the DevTools domains the service reads.

pyppeteer's ``BrowserContext.newPage`` (``Target.page``, ``Page.create``) also
enables the Security, Performance and Log domains: nothing here reads their
events, and each one enabled is work in the renderer on every page.  This makes
the page in the same round trips without them.
"""

from __future__ import annotations

import asyncio

from pyppeteer.browser import Browser
from pyppeteer.errors import BrowserError
from pyppeteer.page import Page

from .devtools import DevToolsConnection


async def open_page(browser: Browser, connection: DevToolsConnection, context_id: str) -> Page:
    """A blank page in the browser context ``context_id`` of ``browser`` (which runs on ``connection``)."""
    target_id = (await connection.send("Target.createTarget",
                                       {"url": "about:blank", "browserContextId": context_id}))["targetId"]
    # pyppeteer's Browser made the Target from the targetCreated event, which arrived first.
    target = browser._targets.get(target_id)
    if target is None or not await target._initializedPromise:
        raise BrowserError("Failed to create target for page.")
    client = await connection.createSession(target._targetInfo)
    await client.send("Page.enable")
    frame_tree = (await client.send("Page.getFrameTree"))["frameTree"]
    page = Page(client, target, frame_tree, False, browser._screenshotTaskQueue)
    await asyncio.gather(
        client.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False}),
        client.send("Page.setLifecycleEventsEnabled", {"enabled": True}),
        client.send("Network.enable", {}),
        client.send("Runtime.enable", {}),
    )
    target._page = page  # what Target.page() answers from now on
    return page
