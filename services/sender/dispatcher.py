"""Deliver batches on an event loop with bounded in-flight deliveries, checking before each send.

Every item is a task on the channel's loop; at most `concurrency` are with the messenger at
once, so a slow recipient holds one slot, never a batch or a thread. Right before an item is
handed over it is checked: an abandoned batch (its session lost) no longer sends it, past its
deadline it expires, held campaigns hold it, an open circuit defers it. A blocking messenger
(SMTP) runs on a few threads beside the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Container, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import uvloop

from services.sender.breaker import ChannelBreaker
from services.sender.kept import KeptResults
from services.sender.slots import LatencySlots
from shared import metrics
from shared.channels.base import (
    AsyncMessenger,
    AsyncMessengerFactory,
    ChannelFactory,
    Messenger,
    MessengerFactory,
)
from shared.domain.concurrency import GradientLimit
from shared.domain.outcomes import DEFERRED, DeliveryResult, deferred, expired, held, transient
from shared.domain.throttle import priority_concurrency
from shared.messaging.envelopes import DeliveryItem, GatewayDelivery

log = logging.getLogger(__name__)

Results = list[tuple[DeliveryItem, DeliveryResult]]
OUTCOME_LABELS = ("sent", "transient", "permanent", "expired", "held", "deferred")
# A blocking messenger holds a thread per delivery; more would only queue at its own pool.
MAX_BLOCKING_THREADS = 64
DEFAULT_FLOOR = 16  # campaign slots kept however slow the gateway answers


class BatchProgress:
    """One batch's results as they come in: taken in parts, complete when the last is in.

    Abandoned when the broker session holding the batch is lost: the batch can no longer be
    acked and will come again, so its items still waiting for a slot are not handed over any
    more, and every result, recorded or still to come, goes to the kept results instead.
    """

    def __init__(self, items: Sequence[DeliveryItem], on_complete: Callable[[], None]) -> None:
        self.items = items
        self.started = time.monotonic()  # the worker sets it again when it dispatches them
        self._results: Results = []  # all of them: an abandoned batch keeps those taken too
        self._taken = 0
        self._missing = len(items)
        self._waiting = len(items)  # not yet handed to the messenger
        self._sending: dict[int, DeliveryItem] = {}  # with the messenger, by message id
        self._kept: KeptResults | None = None  # set when abandoned
        self._lock = threading.Lock()
        self._on_complete = on_complete

    def hand_over(self, item: DeliveryItem) -> bool:
        """The item has a delivery slot: False if the batch was abandoned (then it is not sent)."""
        with self._lock:
            if self._kept is not None:
                return False
            self._waiting -= 1
            self._sending[item.message_id] = item
            return True

    def mark_handed_over(self, count: int) -> None:
        """This many items get their results from elsewhere (kept results), not from a slot."""
        with self._lock:
            self._waiting -= count

    def record(self, item: DeliveryItem, result: DeliveryResult) -> None:
        with self._lock:
            self._results.append((item, result))
            self._sending.pop(item.message_id, None)
            self._missing -= 1
            is_last = self._missing == 0
            kept = self._kept
        if kept is not None:
            kept.keep(item, result)
        elif is_last:
            self._on_complete()

    def take(self) -> Results:
        """The results recorded since the last take."""
        with self._lock:
            ready = self._results[self._taken :]
            self._taken = len(self._results)
        return ready

    def abandon(self, kept: KeptResults) -> tuple[int, int]:
        """The session holding the batch is gone: no more hand-overs, results go to kept.

        Safe from any thread; an item handed over concurrently is either refused or, once
        with the messenger, counted as expected. Returns how many items were done and how
        many with the messenger.
        """
        with self._lock:
            if self._kept is not None:
                return 0, 0
            self._kept = kept
            results = list(self._results)
            sending = list(self._sending.values())
        for item, result in results:
            kept.keep(item, result)
        for item in sending:
            kept.expect(item)
        return len(results), len(sending)

    @property
    def is_abandoned(self) -> bool:
        return self._kept is not None

    @property
    def is_complete(self) -> bool:
        return self._missing == 0

    @property
    def is_all_handed_over(self) -> bool:
        """Whatever is missing is with the messenger, not waiting for a slot."""
        return self._waiting <= 0


class Dispatcher:
    """Runs one channel's deliveries on its own event loop thread."""

    def __init__(
        self,
        channel: str,
        factory: ChannelFactory,
        concurrency: int,
        breaker: ChannelBreaker,
        held_campaigns: Container[int] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self._factory = factory
        self._is_async = inspect.iscoroutinefunction(factory)
        self._breaker = breaker
        self._held = held_campaigns
        self._clock = clock
        threads = min(concurrency, MAX_BLOCKING_THREADS)
        self._concurrency = concurrency if self._is_async else threads
        self._priority_concurrency = priority_concurrency(self._concurrency)
        self._threads: ThreadPoolExecutor | None = None
        self._priority_threads: ThreadPoolExecutor | None = None
        if not self._is_async:
            self._threads = ThreadPoolExecutor(threads, thread_name_prefix=f"send-{channel}")
            # Threads of their own too: a notification never queues behind busy campaign ones.
            self._priority_threads = ThreadPoolExecutor(
                self._priority_concurrency, thread_name_prefix=f"send-{channel}-priority"
            )
        self._local = threading.local()
        self._blocking: list[Messenger] = []
        self._blocking_lock = threading.Lock()
        self._deliveries = {o: metrics.SENDER_DELIVERIES.labels(channel, o) for o in OUTCOME_LABELS}
        self._duration = metrics.SENDER_DELIVERY_DURATION.labels(channel)
        self._abandoned = metrics.SENDER_ABANDONED_ITEMS.labels(channel)
        self._tasks: set[asyncio.Task[None]] = set()
        # uvloop: measured here, a fifth more deliveries per second for a tenth less CPU.
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"loop-{channel}", daemon=True
        )
        self._thread.start()
        # Over the network the campaign slots follow the gateway's latency; a blocking
        # messenger keeps its fixed pool of threads.
        floor = DEFAULT_FLOOR if self._is_async else self._concurrency
        self._slots = LatencySlots(GradientLimit(self._concurrency, floor=floor))
        self._slots_gauge = metrics.SENDER_CAMPAIGN_SLOTS.labels(channel)
        self._messenger, self._priority_slots = asyncio.run_coroutine_threadsafe(
            self._setup(), self._loop
        ).result()
        # A messenger over several gateways breaks per gateway: one failing gateway must not
        # hold back the routes the others serve.
        self._uses_breaker = not getattr(self._messenger, "judges_its_gateways", False)

    async def _setup(self) -> tuple[AsyncMessenger | None, asyncio.Semaphore]:
        messenger = None
        if self._is_async:
            messenger = await cast(AsyncMessengerFactory, self._factory)()
        return messenger, asyncio.Semaphore(self._priority_concurrency)

    def dispatch(
        self,
        campaign_id: int,
        progress: BatchProgress,
        items: Sequence[DeliveryItem] | None = None,
        *,
        priority: bool = False,
    ) -> None:
        """Deliver these items of the batch (all by default); progress gets each result.

        Priority items (notifications) take slots of their own, so they never wait behind
        campaign items queued for a slot. Safe from any thread.
        """
        items = progress.items if items is None else items
        metrics.SENDER_IN_FLIGHT.inc(len(items))
        self._loop.call_soon_threadsafe(self._start, campaign_id, progress, items, priority)

    def tell_gateway_delivery(self, verdicts: GatewayDelivery) -> None:
        """Receipts' verdicts on the gateways, for a messenger that routes between them.

        Safe from any thread; gateways the snapshot does not judge are not low.
        """
        set_low = getattr(self._messenger, "set_low_delivery", None)
        if set_low is None:
            return
        gateways = getattr(self._messenger, "gateway_names", ())

        def apply() -> None:
            for name in gateways:
                set_low(name, name in verdicts.low, verdicts.shares.get(name))

        self._loop.call_soon_threadsafe(apply)

    def breaker_states(self) -> tuple[dict[str, str], dict[str, str]]:
        """(the channel's breaker, each gateway's breaker) as states; safe from any thread.

        A messenger that routes between gateways breaks per gateway, and its channel-wide
        breaker stands aside (it is not reported then).
        """
        gateway_states = getattr(self._messenger, "gateway_states", None)
        gateways = gateway_states() if gateway_states is not None else {}
        circuits = {self.channel: self._breaker.state} if self._uses_breaker else {}
        return circuits, gateways

    def close(self) -> None:
        """Finish what was dispatched, then release the messengers and stop the loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        for pool in (self._threads, self._priority_threads):
            if pool is not None:
                pool.shutdown(wait=True)
        with self._blocking_lock:
            for messenger in self._blocking:
                messenger.close()
            self._blocking.clear()

    async def _shutdown(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._messenger is not None:
            await self._messenger.close()

    def _start(
        self,
        campaign_id: int,
        progress: BatchProgress,
        items: Sequence[DeliveryItem],
        priority: bool,
    ) -> None:
        for item in items:
            task = self._loop.create_task(self._deliver(campaign_id, item, progress, priority))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, campaign_id: int, item: DeliveryItem, progress: BatchProgress, priority: bool
    ) -> None:
        async with self._priority_slots if priority else self._slots:
            if not progress.hand_over(item):
                # Its batch will come again (the session holding it is gone): sending it now
                # would only send it twice. The slot goes to the next item at once.
                self._abandoned.inc()
                metrics.SENDER_IN_FLIGHT.dec()
                return
            result = await self._attempt(campaign_id, item, priority)
        self._deliveries[result.kind].inc()
        metrics.SENDER_IN_FLIGHT.dec()
        try:
            progress.record(item, result)
        except Exception:
            # Nothing else would ever see this error: the task's result is never read.
            log.exception("finishing a %s batch failed", self.channel)

    async def _attempt(
        self, campaign_id: int, item: DeliveryItem, priority: bool = False
    ) -> DeliveryResult:
        # Checked here, right before the hand-over: the item may have waited for a slot.
        if self._clock() >= item.deadline:
            return expired()
        if campaign_id in self._held:
            return held()
        permit = self._breaker.allow() if self._uses_breaker else 0
        if permit is None:
            return deferred()
        started = time.perf_counter()
        try:
            result = await self._send(item, priority)
        except Exception as exc:
            # A messenger must not raise; if one does, the batch still completes and the
            # item comes back through a retry tier instead of holding the delivery unacked.
            log.exception("%s messenger raised instead of returning a result", self.channel)
            result = transient(f"messenger error: {type(exc).__name__}: {exc}")
        duration = time.perf_counter() - started
        # A deferral (every gateway of its route held back) made no request: its instant
        # "round trip" would only teach the slots that the gateway is fast.
        if result.kind != DEFERRED:
            self._duration.observe(duration)
            if not priority:
                self._slots.record(duration)
                self._slots_gauge.set(self._slots.limit.slots)
        if self._uses_breaker:
            self._breaker.record(permit, result)
        return result

    async def _send(self, item: DeliveryItem, priority: bool) -> DeliveryResult:
        if self._messenger is not None:
            return await self._messenger.send(item)
        pool = self._priority_threads if priority else self._threads
        return await self._loop.run_in_executor(pool, self._send_blocking, item)

    def _send_blocking(self, item: DeliveryItem) -> DeliveryResult:
        messenger: Messenger | None = getattr(self._local, "messenger", None)
        if messenger is None:
            # One messenger per thread: smtplib and its kind are not thread-safe.
            messenger = cast(MessengerFactory, self._factory)()
            self._local.messenger = messenger
            with self._blocking_lock:
                self._blocking.append(messenger)
        return messenger.send(item)
