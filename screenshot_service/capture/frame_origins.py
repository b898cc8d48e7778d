"""The origin of each frame of a page, as the page's own scripts would see it (``self.origin``).

``Page.frameNavigated`` names a frame's origin from its URL: it says the
target's origin for a sandboxed frame loaded from there (whose real origin is
opaque), and ``://`` for every about:blank and srcdoc frame (whose real origin
is inherited).  The frame's main-world execution context
(``Runtime.executionContextCreated``, reported from its document's commit, before
any of its scripts runs) carries the real one, so that one wins.  Until a frame
has one, it is judged conservatively by what is known:

- a frame not yet navigated holds its initial empty document, whose origin is
  its parent's (the frame that created it);
- an about:blank or srcdoc document inherits its parent's origin;
- any other document has its URL's origin;
- a frame swapped into another process (site isolation) holds another site's
  document, whose events this session does not see: of no origin until it comes back.

Opaque origins (sandboxed frames, data: documents) are None: of no origin at all.
Subscribing sends nothing to the browser; every answer comes from the events seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..egress.urls import origin_of

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver

INHERITING_URLS = ("about:blank", "about:srcdoc")


@dataclass
class _Frame:
    parent: str | None  # the parent frame's id; None for the main frame
    url: str | None = None  # None while the frame holds its initial empty document
    context: int | None = None  # id of the main-world execution context of its document
    context_origin: str | None = None  # that context's origin; None when opaque
    remote: bool = False  # its document runs in another process, beyond this page's DevTools session


class FrameOrigins:
    """Follows the frames of ``page`` from now on; ``origin(frame_id)`` answers from what it saw."""

    def __init__(self, page: PageDriver) -> None:
        self._frames: dict[str, _Frame] = {page.main_frame_id: _Frame(parent=None)}
        page.on("Page.frameAttached", self._on_attached)
        page.on("Page.frameNavigated", self._on_navigated)
        page.on("Page.frameDetached", self._on_detached)
        page.on("Runtime.executionContextCreated", self._on_context_created)
        page.on("Runtime.executionContextDestroyed", self._on_context_destroyed)
        page.on("Runtime.executionContextsCleared", self._on_contexts_cleared)

    def origin(self, frame_id: str) -> str | None:
        """The origin of the document ``frame_id`` holds now, or None: opaque, or a frame never seen."""
        frame = self._frames.get(frame_id)
        for _ in range(len(self._frames)):  # each step goes up one frame: a parent chain ends within that many
            if frame is None or frame.remote:
                return None
            if frame.context is not None:
                return frame.context_origin
            if frame.url is not None and not frame.url.startswith(INHERITING_URLS):
                return origin_of(frame.url)
            frame = self._frames.get(frame.parent) if frame.parent is not None else None
        return None

    def navigated_only_by(self, frame_id: str, origin: str) -> bool:
        """Whether only frames of ``origin`` may navigate ``frame_id`` (the page's top aside).

        HTML lets a frame navigate the frames it is same-origin with or with one of their
        ancestors, its own descendants and its ancestors (``parent.location = ...``).  So
        the frame, every frame above it and every frame below it must hold documents of
        ``origin``: then whoever navigates it does too.
        """
        above: str | None = frame_id
        for _ in range(len(self._frames)):
            if above is None:
                return all(self.origin(below) == origin for below in self._below(frame_id))
            if above not in self._frames or self.origin(above) != origin:
                return False
            above = self._frames[above].parent
        return False

    def _below(self, frame_id: str) -> list[str]:
        below, grew = [], True
        inside = {frame_id}
        while grew:  # a handful of frames: each pass adds the next generation
            grew = False
            for child, frame in self._frames.items():
                if child not in inside and frame.parent in inside:
                    inside.add(child)
                    below.append(child)
                    grew = True
        return below

    def _on_attached(self, event: dict[str, Any]) -> None:
        frame_id, parent = str(event.get("frameId", "")), str(event.get("parentFrameId", ""))
        self._frames.setdefault(frame_id, _Frame(parent=parent or None))

    def _on_navigated(self, event: dict[str, Any]) -> None:
        info = event.get("frame") or {}
        frame_id, parent = str(info.get("id", "")), info.get("parentId")
        # A new document: its context is reported after this event.
        self._frames[frame_id] = _Frame(parent=str(parent) if parent else None, url=str(info.get("url", "")))

    def _on_detached(self, event: dict[str, Any]) -> None:
        frame_id = str(event.get("frameId", ""))
        if event.get("reason") != "swap":
            self._frames.pop(frame_id, None)
        elif frame_id in self._frames:  # another site's document, in its own process: none of the target's
            self._frames[frame_id].remote = True

    def _on_context_created(self, event: dict[str, Any]) -> None:
        context = event.get("context") or {}
        aux = context.get("auxData") or {}
        frame = self._frames.get(str(aux.get("frameId", "")))
        if frame is None or aux.get("isDefault") is not True or not isinstance(context.get("id"), int):
            return  # isolated worlds (the service's own scripts) say nothing of the page's origin
        frame.context, frame.context_origin = context["id"], origin_of(str(context.get("origin", "")))

    def _on_context_destroyed(self, event: dict[str, Any]) -> None:
        gone = event.get("executionContextId")
        for frame in self._frames.values():
            if frame.context == gone:  # the document is going: of no origin until the next one commits
                frame.context_origin = None

    def _on_contexts_cleared(self, event: dict[str, Any]) -> None:
        for frame in self._frames.values():
            if frame.context is not None:
                frame.context_origin = None
