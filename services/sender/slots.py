"""Campaign delivery slots on the dispatcher's loop, as many as the latency limit allows.

An asyncio.Semaphore has a fixed size; these follow shared.domain.concurrency.GradientLimit,
fed with each answer's round trip, so a gateway that queues is not handed more requests
than it serves without a queue (and notifications sent to it do not wait behind them).
"""

from __future__ import annotations

import asyncio
from collections import deque

from shared.domain.concurrency import GradientLimit


class LatencySlots:
    """`async with slots:` waits for a free slot; loop thread only.

    First come, first served: a freed slot is handed to the longest waiting delivery, never
    taken by one that arrives meanwhile, so each waiting delivery wakes once, to run (a
    semaphore that lets newcomers barge in wakes its waiters again and again for nothing).
    """

    def __init__(self, limit: GradientLimit) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if not self._waiting and self.in_use < self.limit.slots:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter  # the slot is counted as ours when it is handed over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over just as we were cancelled: pass it on
            raise

    async def __aexit__(self, *_exc_info: object) -> None:
        self._release()

    def record(self, rtt_s: float) -> None:
        """An answer's round trip: the limit may grow, and let waiting deliveries in."""
        self.limit.record(rtt_s)
        self._hand_over()

    def _release(self) -> None:
        self.in_use -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiting and self.in_use < self.limit.slots:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled waiter takes nothing
                self.in_use += 1
                waiter.set_result(None)
