"""The gateway's raw capacity through the sender's own HTTP client, with no Herald in between.

Same messenger code, same thread count per process, same number of processes as the
senders, so Herald's rate divided by this one is a stable ratio on a noisy machine.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing as mp
import threading
import time
from typing import Any, cast

from shared.channels.base import MessengerFactory
from shared.channels.registry import build_registry
from shared.config import Settings
from shared.messaging.envelopes import DeliveryItem


def _hammer(gateway_url: str, token: str, concurrency: int, seconds: float, out: mp.Queue) -> None:
    settings = Settings(
        gateway_url=gateway_url, gateway_token=token, sender_concurrency=concurrency
    )
    factory = build_registry(settings)["http"]
    if inspect.iscoroutinefunction(factory):
        # The sender's messenger is async: `concurrency` requests in flight on one loop.
        out.put(asyncio.run(_hammer_async(factory, concurrency, seconds)))
        return
    deadline = time.monotonic() + seconds
    counts = [0] * concurrency
    sync_factory = cast(MessengerFactory, factory)

    def worker(slot: int) -> None:
        messenger = sync_factory()
        n = 0
        while time.monotonic() < deadline:
            item = DeliveryItem(slot * 10_000_000 + n, "+79160000000", "raw", 1, 4e9)
            if messenger.send(item).kind == "sent":
                counts[slot] += 1
            n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(counts), time.monotonic() - began))


async def _hammer_async(factory: Any, concurrency: int, seconds: float) -> tuple[int, float]:
    messenger = await factory()
    deadline = time.monotonic() + seconds
    counts = [0] * concurrency

    async def worker(slot: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            item = DeliveryItem(slot * 10_000_000 + n, "+79160000000", "raw", 1, 4e9)
            if (await messenger.send(item)).kind == "sent":
                counts[slot] += 1
            n += 1

    began = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.monotonic() - began
    await messenger.close()
    return sum(counts), elapsed


def measure_raw_capacity(
    gateway_url: str, token: str, processes: int, concurrency: int, seconds: float = 8.0
) -> float:
    """Successful requests per second from `processes` processes of `concurrency` threads."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    workers = [
        ctx.Process(target=_hammer, args=(gateway_url, token, concurrency, seconds, out))
        for _ in range(processes)
    ]
    for p in workers:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in workers]
    for p in workers:
        p.join()
    return sum(n for n, _ in results) / max(elapsed for _, elapsed in results)
