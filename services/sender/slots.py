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
    """`async with slots:` waits for a free slot; loop thread only."""

    def __init__(self, limit: GradientLimit) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        while self.in_use >= self.limit.slots:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            await waiter
        self.in_use += 1

    async def __aexit__(self, *_exc_info: object) -> None:
        self.in_use -= 1
        self._wake()

    def record(self, rtt_s: float) -> None:
        """An answer's round trip: the limit may grow, and let waiting deliveries in."""
        self.limit.record(rtt_s)
        self._wake()

    def _wake(self) -> None:
        free = self.limit.slots - self.in_use
        while free > 0 and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
