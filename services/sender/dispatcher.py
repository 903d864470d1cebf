"""Deliver batches on a bounded thread pool, a messenger per thread, skipping expired items.

Items of every batch in flight share one pool, so a slow recipient holds one thread, not a
batch: concurrency is bounded by the pool, and the prefetch bounds how much waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from services.sender.messengers.base import Messenger, MessengerFactory
from shared import metrics
from shared.domain.outcomes import DeliveryResult, expired, transient
from shared.messaging.envelopes import DeliveryItem

log = logging.getLogger(__name__)

Results = list[tuple[DeliveryItem, DeliveryResult]]
OnDone = Callable[[Results], None]
OUTCOME_LABELS = ("sent", "transient", "permanent", "expired")


class _BatchResults:
    """Collects one batch's results in item order and fires on_done with the last one."""

    def __init__(self, items: Sequence[DeliveryItem], on_done: OnDone) -> None:
        self._items = items
        self._results: list[DeliveryResult | None] = [None] * len(items)
        self._missing = len(items)
        self._lock = threading.Lock()
        self._on_done = on_done

    def record(self, index: int, result: DeliveryResult) -> None:
        with self._lock:
            self._results[index] = result
            self._missing -= 1
            is_last = self._missing == 0
        if is_last:
            self._on_done(
                [(item, r) for item, r in zip(self._items, self._results, strict=True) if r]
            )


class Dispatcher:
    """Runs one channel's deliveries on `concurrency` threads."""

    def __init__(
        self,
        channel: str,
        factory: MessengerFactory,
        concurrency: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self._factory = factory
        self._clock = clock
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix=f"send-{channel}")
        self._local = threading.local()
        self._messengers: list[Messenger] = []
        self._messengers_lock = threading.Lock()
        self._deliveries = {o: metrics.SENDER_DELIVERIES.labels(channel, o) for o in OUTCOME_LABELS}
        self._duration = metrics.SENDER_DELIVERY_DURATION.labels(channel)

    def dispatch(self, items: Sequence[DeliveryItem], on_done: OnDone) -> None:
        """Send every item; on_done gets all (item, result) pairs once the last one is in."""
        if not items:
            on_done([])
            return
        batch = _BatchResults(items, on_done)
        metrics.SENDER_IN_FLIGHT.inc(len(items))
        for index, item in enumerate(items):
            self._executor.submit(self._deliver, batch, index, item)

    def close(self) -> None:
        """Finish what was submitted, then release every messenger."""
        self._executor.shutdown(wait=True, cancel_futures=False)
        with self._messengers_lock:
            for messenger in self._messengers:
                messenger.close()
            self._messengers.clear()

    def _deliver(self, batch: _BatchResults, index: int, item: DeliveryItem) -> None:
        result = self._send(item)
        self._deliveries[result.kind].inc()
        metrics.SENDER_IN_FLIGHT.dec()
        try:
            batch.record(index, result)
        except Exception:
            # Nothing else would ever see this error: the future's result is never read.
            log.exception("finishing a %s batch failed", self.channel)

    def _send(self, item: DeliveryItem) -> DeliveryResult:
        # Checked here, not at dispatch: the item may have waited for a thread.
        if self._clock() >= item.deadline:
            return expired()
        started = time.perf_counter()
        try:
            return self._messenger().send(item)
        except Exception as exc:
            # A messenger must not raise; if one does, the batch still completes and the
            # item comes back through a retry tier instead of holding the delivery unacked.
            log.exception("%s messenger raised instead of returning a result", self.channel)
            return transient(f"messenger error: {type(exc).__name__}: {exc}")
        finally:
            self._duration.observe(time.perf_counter() - started)

    def _messenger(self) -> Messenger:
        messenger: Messenger | None = getattr(self._local, "messenger", None)
        if messenger is None:
            messenger = self._factory()
            self._local.messenger = messenger
            with self._messengers_lock:
                self._messengers.append(messenger)
        return messenger
