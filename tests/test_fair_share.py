"""Fair share of the pool between keys (Step 15, point 5).

Attackers fill the pool with captures of a page whose load the test holds back
(/pending-image: its image waits for the test's gate), so which capture ends when
is the test's choice, never a timer's.  Assertions count answers and wait on conditions.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from screenshot_service.browser.pool import SYNC, BrowserPool
from screenshot_service.limits.keys import create_key
from tests import site
from tests.conftest import Service, wait_for

BOUND = 30.0  # seconds a condition may take to hold on a loaded machine
ROOMY = {"requests_per_second": 100000, "burst": 100000, "monthly_captures": 10**9, "concurrency": 100}
_tokens = itertools.count()


@pytest.fixture
def gates() -> Iterator[Callable[[], str]]:
    """new_gate() -> token: a /pending-image load held until ``site.LATE_GATES[token].set()``;
    every gate is opened after the test."""
    made: list[str] = []

    def new_gate() -> str:
        token = f"fair{next(_tokens)}"
        site.LATE_GATES[token] = asyncio.Event()
        made.append(token)
        return token

    yield new_gate
    for token in made:
        site.LATE_GATES.pop(token).set()


class Shots:
    """Captures fired as tasks; each ends as (status, error code or None)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.tasks: list[asyncio.Task[tuple[int, str | None]]] = []

    def fire(self, key: str, token: str | None = None) -> asyncio.Task[tuple[int, str | None]]:
        path = f"/pending-image?token={token}" if token else "/paint"
        task = asyncio.ensure_future(self._shot(key, path))
        self.tasks.append(task)
        return task

    async def _shot(self, key: str, path: str) -> tuple[int, str | None]:
        query = {"url": self.svc.site.url + path, "api_key": key}
        response = await self.svc.client.get("/v1/screenshot", params=query)
        body: Any = await response.json() if response.content_type == "application/json" else {}
        return response.status, (body.get("error") or {}).get("code")

    async def settle(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), BOUND)


def answers(tasks: list[asyncio.Task[tuple[int, str | None]]]) -> list[tuple[int, str | None]]:
    return [task.result() for task in tasks if task.done()]


async def placed(pool: BrowserPool, in_use: int, waiting: int) -> None:
    assert await wait_for(lambda: pool.admission.in_use[SYNC] == in_use and pool.admission.waiting == waiting,
                          BOUND), pool.stats()


async def raw_key(svc: Service, plan: str) -> str:
    return (await create_key(svc.state, plan, plan))[1]


async def test_a_third_key_is_never_refused_and_gets_the_next_free_slot(
    shared_pool: BrowserPool, make_service: Callable[..., Any], gates: Callable[[], str]
) -> None:
    pool = shared_pool  # 2 slots, 8 queue places
    svc: Service = await make_service(plans={"attacker": ROOMY})
    shots = Shots(svc)
    a_key, b_key, c_key = await raw_key(svc, "attacker"), await raw_key(svc, "attacker"), svc.key
    a_gates, b_gates = [gates() for _ in range(5)], [gates() for _ in range(5)]
    a = [shots.fire(a_key, a_gates[0])]
    await placed(pool, 1, 0)
    b = [shots.fire(b_key, b_gates[0])]
    await placed(pool, 2, 0)
    a += [shots.fire(a_key, token) for token in a_gates[1:]]
    b += [shots.fire(b_key, token) for token in b_gates[1:]]
    await placed(pool, 2, 8)  # every place taken: one capture of each attacker runs, four of each wait

    c = [shots.fire(c_key), shots.fire(c_key)]
    # Each takes the newest queued place of the key holding the most; those callers hear 503 at once.
    assert await wait_for(lambda: len(answers(a + b)) == 2, BOUND)
    assert answers(a + b) == [(503, "overloaded")] * 2
    assert not any(task.done() for task in c)
    # The attackers' new requests are the ones refused: each attacker holds the most.
    refused = [shots.fire(a_key, gates()), shots.fire(b_key, gates())]
    assert await wait_for(lambda: all(task.done() for task in refused), BOUND)
    assert answers(refused) == [(503, "overloaded")] * 2

    # One attacker capture ends: the freed slot goes to the third key, not to a queued attacker.
    site.LATE_GATES[a_gates[0]].set()
    assert await wait_for(lambda: any(task.done() for task in c), BOUND)
    assert answers(c) == [(200, None)]
    assert answers(a + b).count((200, None)) == 1
    # The other attacker's capture ends: the third key's second request is next again.
    site.LATE_GATES[b_gates[0]].set()
    assert await wait_for(lambda: all(task.done() for task in c), BOUND)
    assert answers(c) == [(200, None)] * 2
    assert answers(a + b).count((200, None)) == 2

    for token in a_gates + b_gates:
        site.LATE_GATES[token].set()
    await shots.settle()
    assert sorted(answers(a + b)) == [(200, None)] * 8 + [(503, "overloaded")] * 2


async def test_a_plan_caps_the_share_one_key_holds_while_others_wait(
    shared_pool: BrowserPool, make_service: Callable[..., Any], gates: Callable[[], str]
) -> None:
    pool = shared_pool  # 2 slots
    svc: Service = await make_service(plans={"capped": {**ROOMY, "max_pool_share": 0.5}})
    shots = Shots(svc)
    capped, other = await raw_key(svc, "capped"), svc.key
    a_gates, b_gates = [gates() for _ in range(3)], [gates() for _ in range(2)]
    a = [shots.fire(capped, a_gates[0]), shots.fire(capped, a_gates[1])]
    await placed(pool, 2, 0)  # alone, the capped key uses the whole pool
    b = [shots.fire(other, b_gates[0])]
    await placed(pool, 2, 1)
    a.append(shots.fire(capped, a_gates[2]))
    await placed(pool, 2, 2)
    b.append(shots.fire(other, b_gates[1]))
    await placed(pool, 2, 3)

    site.LATE_GATES[a_gates[0]].set()  # the capped key's first capture ends: the other key's turn
    assert await wait_for(lambda: a[0].done(), BOUND)
    await placed(pool, 2, 2)
    # The other key's capture ends.  The capped key's waiter is older and both keys have one
    # capture running, but the capped key already holds its share (one of two slots) while the
    # other key waits: the slot goes to the other key.
    site.LATE_GATES[b_gates[0]].set()
    site.LATE_GATES[b_gates[1]].set()
    assert await wait_for(lambda: all(task.done() for task in b), BOUND)
    assert answers(b) == [(200, None)] * 2
    assert not a[2].done()

    for token in a_gates:
        site.LATE_GATES[token].set()
    await shots.settle()
    assert answers(a) == [(200, None)] * 3


async def test_captures_that_time_out_are_refunded_but_slowed_by_the_plan(
    make_service: Callable[..., Any], gates: Callable[[], str]
) -> None:
    plan = {**ROOMY, "concurrency": 1, "timeout_penalty": 2.0}
    svc: Service = await make_service(plan="slowed", plans={"slowed": plan})
    url = svc.site.url + f"/pending-image?token={gates()}"
    timed_out = await svc.client.get("/v1/screenshot", params={"url": url, "api_key": svc.key, "timeout": "1"})
    assert timed_out.status == 504
    assert (await timed_out.json())["error"]["code"] == "capture_timeout"
    # Refunded, yet the key's one capture slot stays taken for twice the capture's second.
    usage = await (await svc.client.get("/v1/usage", headers=svc.auth())).json()
    assert usage["quota"]["used"] == 0, usage
    held = await svc.shot("/paint")
    assert held.status == 429
    assert (await held.json())["error"]["code"] == "concurrency_limited"

    async def served() -> bool:
        return (await svc.shot("/paint")).status == 200

    assert await wait_for(served, BOUND)  # and then it is the key's again


async def test_a_timeout_spent_waiting_in_the_queue_is_not_held_against_the_key(
    shared_pool: BrowserPool, make_service: Callable[..., Any], gates: Callable[[], str]
) -> None:
    # The penalty slows a key whose own pages hold browsers, not one that only waited behind others.
    plan = {**ROOMY, "concurrency": 1, "timeout_penalty": 20.0}
    svc: Service = await make_service(plans={"attacker": ROOMY, "slowed": plan})
    shots = Shots(svc)
    holder, waiter = await raw_key(svc, "attacker"), await raw_key(svc, "slowed")
    held = [gates(), gates()]
    running = [shots.fire(holder, token) for token in held]
    await placed(shared_pool, 2, 0)
    query = {"url": svc.site.url + "/paint", "api_key": waiter, "timeout": "1"}
    timed_out = await svc.client.get("/v1/screenshot", params=query)
    assert timed_out.status == 504, await timed_out.text()
    for token in held:
        site.LATE_GATES[token].set()
    await shots.settle()
    assert answers(running) == [(200, None)] * 2
    again = await svc.client.get("/v1/screenshot", params={**query, "timeout": "30"})
    assert again.status == 200, await again.text()


async def test_a_waiter_cancelled_in_the_turn_a_slot_frees_neither_takes_it_nor_breaks_the_release() -> None:
    # A queued request's deadline (or its client leaving) cancels its wait in the same loop
    # turn as another capture ends: the slot must go back to the pool, not to the gone waiter
    # (which lost it for good and turned the ending capture into a 500).
    from screenshot_service.browser.fair_slots import FairSlots

    slots = FairSlots(1)
    first = slots.enqueue("a", 1.0)
    await slots.wait(first)

    async def queued() -> None:  # as admission does: join the queue, then wait in the same task
        await slots.wait(slots.enqueue("b", 1.0))

    waiting = asyncio.create_task(queued())
    await wait_for(lambda: slots.waiting == 1, BOUND)
    waiting.cancel()
    slots.release("a")
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (slots.free, dict(slots.in_flight), slots.waiting) == (1, {}, 0)
    later = slots.enqueue("c", 1.0)
    await asyncio.wait_for(slots.wait(later), BOUND)
    assert dict(slots.in_flight) == {"c": 1}
