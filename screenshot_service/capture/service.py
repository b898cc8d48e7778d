"""One capture end to end: egress check → pool slot → render → store.

Used by the sync endpoint, the job workers and the one-shot CLI alike.  The
deadline covers everything from the request's arrival; storing the result is
shielded from the caller going away, so a finished capture is never lost
half-way through being saved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

from ..browser.pool import SYNC, BrowserPool, Lease
from ..egress.channel import ProxyChannel
from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver, check_target
from ..egress.upstream import ProxyPools, Upstream
from ..errors import CaptureTimeout
from ..metrics import Metrics
from ..state.errors import StateError
from ..storage.base import CONTENT_TYPES, Storage, StoredObject, new_object_name
from ..storage.customer import CustomerS3, put_to_customer_bucket
from ..storage.errors import StorageError
from . import blocking, metadata, proxy_options, render
from .cache import CacheEntry, CaptureCache, usable_ttl
from .capture_records import CaptureRecords
from .options import CaptureOptions
from .pdf import DEFAULT_MAX_PAGES
from .result import CaptureResult
from .session import CaptureSession
from .timing import ADMISSION, CAPTURE, NAVIGATION, STORE, StageTimings
from .visual_change import NO_BASELINE, Baseline, VisualChange

log = logging.getLogger("screenshot_service.capture")

STORAGE_MARGIN = 0.5  # seconds kept back from storage so its failure is reported in time
RECORD_BOUND = 0.5  # seconds a capture record's write may hold the answer
MARKED = "diff"  # the diff's marked image among what is stored beside a capture (a png)


class CaptureService:
    def __init__(
        self,
        pool: BrowserPool,
        storage: Storage,
        policy: EgressPolicy,
        resolver: Resolver,
        *,
        deadline_seconds: float,
        egress_proxy_url: str | None = None,
        metrics: Metrics | None = None,
        cache: CaptureCache | None = None,
        max_pdf_pages: int = DEFAULT_MAX_PAGES,
        proxies: ProxyPools | None = None,
        records: CaptureRecords | None = None,
        retention: timedelta = timedelta(days=30),  # storage.retention_days: how long records live
    ) -> None:
        self.max_pdf_pages = max_pdf_pages
        self.proxies = proxies or ProxyPools()  # the operator's [proxies.NAME] pools
        self.cache = cache
        self.pool = pool
        self.storage = storage
        self.policy = policy
        self.resolver = resolver
        self.deadline_seconds = deadline_seconds
        self.egress_proxy_url = egress_proxy_url  # for uploads to caller-named S3 endpoints
        # A private registry when none is given (one-shot CLI): the hooks never need a None check.
        self.metrics = metrics or Metrics()
        # Every capture of a key recorded, for compare_to (None: the one-shot CLI, which has no key).
        self.changes = VisualChange(records, storage, self.metrics, retention) if records is not None else None

    def deadline_for(self, opts: CaptureOptions, started: float) -> float:
        """Loop time by which this capture must be over: min(timeout, server deadline)."""
        return started + min(float(opts.timeout), self.deadline_seconds)

    async def capture(
        self,
        opts: CaptureOptions,
        *,
        started: float,
        base_url: str = "",
        customer_s3: CustomerS3 | None = None,
        lane: str = SYNC,
        timings: StageTimings | None = None,
        account: str | None = None,
    ) -> CaptureResult:
        """``started`` is the loop time the request arrived; the deadline counts from it.

        With ``customer_s3`` the image goes to the caller's bucket instead of ours; ``lane``
        is the pool's (sync requests, or asynchronous jobs at a lower CPU priority).
        ``timings`` gets the stages from the egress check to the stored image.  ``account``
        (the key id) has its captures recorded and compared (compare_to).
        """
        timings = timings or StageTimings()
        loop = asyncio.get_running_loop()
        deadline = self.deadline_for(opts, started)
        budget = deadline - started
        changes = self.changes if account is not None else None
        baseline: asyncio.Task[Baseline] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                checking = timings.start(NAVIGATION)
                if opts.html is None:
                    assert opts.url is not None
                    target = await check_target(opts.url, self.policy, self.resolver)
                    opts = opts.with_changes(url=target.url)
                upstream = await proxy_options.checked_upstream(
                    opts.proxy, opts.proxy_pool, self.proxies, self.policy, self.resolver)
                timings.add(NAVIGATION, checking)
                if changes is not None and account is not None and opts.compare_to is not None:
                    found = await changes.find(opts, account)  # a bad id: 400 before any browser work
                    baseline = asyncio.create_task(changes.load(found)) if found is not None else None
                leasing = timings.start(ADMISSION)
                async with self.pool.lease(lane) as lease:
                    timings.add(ADMISSION, leasing)
                    self.metrics.observe_phase("queue", lease.waited_s)
                    rendered, blocked = await lease.guard(self._render(lease, opts, deadline, timings, upstream))
                    compared = None
                    if changes is not None and baseline is not None:
                        # Before the slot is given back: the pool then refills its context, and that
                        # work would compete with the comparison for the same cores.
                        compared = await changes.compare(await baseline, rendered.data, opts.diff_threshold)
                # Storage gets what is left minus a margin, so a hung store is a 502
                # storage_error inside the deadline rather than a generic 504.
                store_budget = max(0.5, deadline - loop.time() - STORAGE_MARGIN)
                stored, content, marked = await asyncio.shield(self._store(
                    opts.format, rendered, base_url, customer_s3, store_budget, timings,
                    compared.marked if compared else None))
                result = self._result(opts, rendered, blocked, stored, content)
                if compared is not None:
                    result = dataclasses.replace(result, diff=compared.to_json(marked or stored))
                elif opts.compare_to is not None:
                    result = dataclasses.replace(result, warnings=(*result.warnings, NO_BASELINE))
                if changes is not None and account is not None:
                    await self._record(changes, result, opts, account, held=customer_s3 is None)
        except TimeoutError:
            raise CaptureTimeout(
                f"the capture did not finish within {budget:g} s",
                details={"deadline_seconds": budget},
            ) from None
        finally:
            if baseline is not None:
                baseline.cancel()
        self.metrics.observe_phase("total", loop.time() - started)
        return dataclasses.replace(result, took_ms=round((loop.time() - started) * 1000))

    def _result(self, opts: CaptureOptions, rendered: render.Rendered, blocked: int, stored: StoredObject,
                content: dict[str, StoredObject]) -> CaptureResult:
        return CaptureResult(
            stored=stored,
            data=rendered.data,
            format=opts.format,
            width=rendered.width,
            height=rendered.height,
            took_ms=0,
            clamped=rendered.clamped,
            blocked_requests=blocked,
            page=rendered.page,
            warnings=rendered.warnings,
            pages=rendered.pages,
            metadata=rendered.metadata,
            content=content,
            compared=opts.compare_to is not None,
        )

    async def _record(self, changes: VisualChange, result: CaptureResult, opts: CaptureOptions, account: str,
                      *, held: bool) -> None:
        """Before the answer (a compare_to right after finds it), but a stalled state store holds
        the answer at most RECORD_BOUND: the write goes on, shielded, and may land later."""
        try:
            async with asyncio.timeout(RECORD_BOUND):
                await asyncio.shield(changes.record(result, opts, account, held=held))
        except (StateError, TimeoutError) as error:  # delivered all the same; only a compare_to may miss it
            log.warning("recording capture %s failed: %s", result.id, getattr(error, "message", "timed out"))

    async def cached(self, opts: CaptureOptions, account: str) -> CaptureResult | None:
        """An identical earlier capture of this account (the pipeline asks when the caller opted in)."""
        if self.cache is None:
            return None
        entry = await self.cache.get(account, opts.cache_fingerprint())
        if entry is None:
            return None
        found = await self.storage.get(entry.stored.name)
        if found is None:  # swept or deleted: capture afresh
            return None
        return CaptureResult(stored=entry.stored, data=found[0], format=entry.format, width=entry.width,
                             height=entry.height, took_ms=0, cached=True, blocked_requests=entry.blocked_requests,
                             clamped=entry.clamped, page=entry.page, warnings=entry.warnings,
                             pages=entry.pages, metadata=entry.metadata, content=entry.content,
                             id=entry.id, captured_at=entry.captured_at)

    async def remember(self, opts: CaptureOptions, account: str, result: CaptureResult) -> None:
        if self.cache is None:
            return
        entry = CacheEntry(stored=result.stored, format=result.format, width=result.width,
                           height=result.height, blocked_requests=result.blocked_requests,
                           clamped=result.clamped, page=result.page, warnings=result.warnings,
                           pages=result.pages, metadata=result.metadata, content=result.content,
                           id=result.id, captured_at=result.captured_at)
        ttl = usable_ttl(entry, float(opts.cache_ttl))
        if ttl > 0:
            await self.cache.put(account, opts.cache_fingerprint(), entry, ttl)

    async def _render(
        self, lease: Lease, opts: CaptureOptions, deadline: float, timings: StageTimings, upstream: Upstream | None
    ) -> tuple[render.Rendered, int]:
        """Render on a leased page; returns the image and how many requests were refused."""
        channel: ProxyChannel | None = lease.handle
        if channel is not None:
            # This capture's ad/tracker lists and upstream proxy, applied by the proxy to every request it sees.
            channel.blocked_hosts = blocking.host_blocker(opts)
            channel.upstream = upstream
        session = CaptureSession(lease.page, channel)
        watch = session.navigation
        began = timings.start(NAVIGATION)
        # A main document the proxy refused or could not fetch (the URL, a redirect, a navigation
        # the page or the caller's js made) fails the capture, whatever error it caused meanwhile.
        with watch.judged():
            await render.prepare(session, opts)
            await render.navigate(session, opts, deadline=deadline)
            await watch.settle()
        self.metrics.observe_phase("navigation", timings.add(NAVIGATION, began))
        began = timings.start(CAPTURE)
        with watch.judged():
            rendered = await render.capture(session, opts, deadline=deadline, max_pdf_pages=self.max_pdf_pages)
            if opts.metadata:
                rendered = dataclasses.replace(rendered, metadata=await metadata.read(session.page))
            await watch.settle()
        self.metrics.observe_phase("capture", timings.add(CAPTURE, began))
        self.metrics.count_blocked(len(session.egress.refused))  # egress refusals, not Chromium's lists
        return rendered, session.blocked_requests

    async def _store(
        self, fmt: str, rendered: render.Rendered, base_url: str, customer: CustomerS3 | None, budget: float,
        timings: StageTimings, marked: bytes | None = None,
    ) -> tuple[StoredObject, dict[str, StoredObject], StoredObject | None]:
        """The capture, its extracted content and its diff's marked image beside it (same backend,
        same retention), at once."""
        async def put(kind: str, data: bytes) -> StoredObject:
            name, content_type = new_object_name(kind), CONTENT_TYPES[kind]
            if customer is None:
                return await self.storage.put(name, data, content_type, base_url=base_url)
            return await self._store_for_customer(customer, name, data, content_type)

        extras = {**rendered.content, **({MARKED: marked} if marked is not None else {})}
        began = timings.start(STORE)
        try:
            async with asyncio.timeout(budget):
                stored, *extracted = await asyncio.gather(
                    put(fmt, rendered.data), *(put(kind if kind != MARKED else "png", data)
                                               for kind, data in extras.items()))
        except TimeoutError:
            self.metrics.count_storage_error(customer=customer is not None)
            raise StorageError(f"storage did not answer within {budget:.1f} s") from None
        except StorageError:
            self.metrics.count_storage_error(customer=customer is not None)
            raise
        self.metrics.observe_phase("storage", timings.add(STORE, began))
        beside = dict(zip(extras, extracted, strict=True))
        return stored, {kind: beside[kind] for kind in rendered.content}, beside.get(MARKED)

    async def _store_for_customer(self, customer: CustomerS3, name: str, data: bytes, content_type: str) -> StoredObject:
        endpoint = customer.endpoint_url or None
        if endpoint:
            # Checked now for a clear 400, and again by the proxy when connecting.
            checked = await check_target(endpoint, self.policy, self.resolver, what="s3.endpoint_url")
            endpoint = checked.url.rstrip("/")
        return await put_to_customer_bucket(
            customer, name, data, content_type, endpoint_url=endpoint,
            proxy_url=self.egress_proxy_url if endpoint else None,
        )

