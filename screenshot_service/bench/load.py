"""Load generators: a closed loop of workers, turn-taking at concurrency 1, and bursts.

Each returns a ``report.Run``: one ``Sample`` per request (status and latency)
and the wall time.  A failing request is a sample with the exception's name
as its status, never an exception out of the generator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .report import Run, Sample

REQUEST_TIMEOUT = 60.0  # client side; the service's own deadline is 30 s
OK = ("200", "ok")



@dataclass(frozen=True)
class Answer:
    """A call's status, with what it measured itself: ``seconds`` when only part of its work is on
    the clock (the warm floor prepares its context before its clock starts and disposes of it after),
    ``stages`` the service's Server-Timing (ms)."""

    status: str
    seconds: float | None = None
    stages: Mapping[str, float] = field(default_factory=dict)


Call = Callable[[], Awaitable[str | Answer]]


async def timed(call: Call) -> Sample:
    """One request: its status (or the exception's name) and how long it took."""
    begin = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            result = await call()
    except TimeoutError:
        result = "client_timeout"
    except Exception as exc:
        result = type(exc).__name__
    elapsed = time.perf_counter() - begin
    if isinstance(result, str):
        return Sample(status=result, latency_s=elapsed, ok=result in OK)
    seconds = elapsed if result.seconds is None else result.seconds
    return Sample(status=result.status, latency_s=seconds, ok=result.status in OK, stages=result.stages)


async def run_load(call: Call, concurrency: int, max_requests: int, max_seconds: float,
                   tick: Callable[[str], None] = lambda status: None) -> Run:
    """``concurrency`` workers calling ``call`` until the request or time budget is spent.

    Every worker makes at least one request, so a slow page still yields a sample per worker.
    """
    issued = 0
    samples: list[Sample] = []
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal issued
        first = True
        while issued < max_requests and (first or time.perf_counter() - started < max_seconds):
            first = False
            issued += 1
            sample = await timed(call)
            samples.append(sample)
            tick(sample.status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(samples=samples, wall_s=time.perf_counter() - started)


async def run_alternating(calls: list[Call], max_requests: int, max_seconds: float,
                          tick: Callable[[str], None] = lambda status: None,
                          settle: Callable[[], Awaitable[object]] | None = None) -> list[Run]:
    """One request at a time, taking turns between ``calls`` (floor, service, floor, ...).

    At concurrency 1 this pairs the measurements: a drift in the machine's
    background load hits both sides alike.  Each side's wall time is the sum of
    its own requests, so throughput stays successes per second of its own work.
    ``settle`` runs before every request: each then starts on a machine the
    previous side has finished with (a context it disposes, a pool refilling
    behind its answer), as a request at concurrency 1 would.
    """
    runs = [Run() for _ in calls]
    started = time.perf_counter()
    rounds = 0
    while rounds < max_requests and (rounds == 0 or time.perf_counter() - started < max_seconds):
        rounds += 1
        for call, run in zip(calls, runs, strict=True):
            if settle is not None:
                await settle()
            sample = await timed(call)
            run.samples.append(sample)
            run.wall_s += sample.latency_s
            tick(sample.status)
    return runs


async def run_chunks(calls: list[Call], concurrency: int, max_requests: int, max_seconds: float,
                     tick: Callable[[str], None] = lambda status: None,
                     settle: Callable[[], Awaitable[object]] | None = None, chunks: int = 3) -> list[Run]:
    """``concurrency`` workers on each of ``calls`` in turn, ``chunks`` chunks each, in an
    A B B A order, so a drift in the machine's speed over the run hits every side alike.

    Each side's wall time is the sum of its own chunks.  ``settle`` runs before every chunk,
    so none starts while the previous side still disposes of contexts or refills a pool.
    A chunk ends when its last worker does: each chunk has one such tail, the same for every side.
    """
    runs = [Run() for _ in calls]
    per_chunk = max(concurrency, -(-max_requests // chunks))
    started = time.perf_counter()
    for chunk in range(chunks):
        if chunk and time.perf_counter() - started >= max_seconds:
            break
        order = list(zip(calls, runs, strict=True))
        for call, run in order if chunk % 2 == 0 else reversed(order):
            wanted = min(per_chunk, max_requests - len(run.samples))
            if wanted <= 0:
                continue
            if settle is not None:
                await settle()
            part = await run_load(call, concurrency, wanted, max_seconds / (chunks * len(calls)), tick)
            run.samples.extend(part.samples)
            run.wall_s += part.wall_s
    return runs


async def run_burst(call: Call, concurrent: int, waves: int, pause: float = 1.0,
                    tick: Callable[[str], None] = lambda status: None) -> Run:
    """``waves`` bursts of ``concurrent`` simultaneous requests (the overload scenario)."""
    run = Run()

    async def one() -> None:
        sample = await timed(call)
        run.samples.append(sample)
        tick(sample.status)

    for wave in range(waves):
        if wave:
            await asyncio.sleep(pause)
        begin = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrent)))
        run.wall_s += time.perf_counter() - begin
    return run
