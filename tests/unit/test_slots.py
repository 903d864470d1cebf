"""Campaign slots: first come, first served, each waiting delivery woken once, to run."""

from __future__ import annotations

import asyncio

from services.sender.slots import LatencySlots
from shared.domain.concurrency import GradientLimit


def slots(size: int) -> LatencySlots:
    return LatencySlots(GradientLimit(size, floor=size))


def test_at_most_the_limit_run_and_waiters_run_in_arrival_order() -> None:
    order: list[int] = []

    async def run() -> int:
        pool = slots(2)
        peak = 0

        async def deliver(n: int) -> None:
            nonlocal peak
            async with pool:
                peak = max(peak, pool.in_use)
                order.append(n)
                await asyncio.sleep(0.001)

        await asyncio.gather(*(deliver(n) for n in range(10)))
        assert pool.in_use == 0
        return peak

    assert asyncio.run(run()) == 2
    assert order == list(range(10))


def test_a_newcomer_does_not_take_a_slot_freed_for_a_waiter() -> None:
    async def run() -> list[str]:
        pool = slots(1)
        log: list[str] = []
        await pool.__aenter__()
        waiting = asyncio.ensure_future(enter(pool, log, "waiter"))
        await asyncio.sleep(0)
        # A newcomer whose first step runs before the waiter wakes: the slot is not its.
        newcomer = asyncio.ensure_future(enter(pool, log, "newcomer"))
        await pool.__aexit__()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log == ["waiter"] and not newcomer.done()
        await pool.__aexit__()
        await asyncio.gather(waiting, newcomer)
        return log

    assert asyncio.run(run()) == ["waiter", "newcomer"]


def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    async def run() -> list[str]:
        pool = slots(1)
        log: list[str] = []
        await pool.__aenter__()
        cancelled = asyncio.ensure_future(enter(pool, log, "cancelled"))
        second = asyncio.ensure_future(enter(pool, log, "second"))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        await pool.__aexit__()
        await second
        await pool.__aexit__()
        assert pool.in_use == 0
        return log

    assert asyncio.run(run()) == ["second"]


async def enter(pool: LatencySlots, log: list[str], name: str) -> None:
    await pool.__aenter__()
    log.append(name)
