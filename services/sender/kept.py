"""KeptResults: what became of the items of batches a lost session held, for their redelivery.

When a sender loses its broker session, the broker requeues every batch the session held
unacked and will deliver them again, here or to another sender. Items of those batches that
were already with the messenger finish anyway; their results, and those recorded before the
loss, are kept here by message id and attempt, so that a redelivered batch arriving at this
sender settles those items from what is kept instead of sending them a second time. Items
whose outcomes were already published are marked so, and are left out of the redelivery.

Bounded in size and age: a redelivery comes within seconds of the reconnect, or went to
another sender and never comes here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shared.domain.outcomes import DeliveryResult, transient
from shared.messaging.envelopes import DeliveryItem

MAX_AGE_S = 300.0  # many times the longest reconnect backoff (30 s)
MAX_ITEMS = 20_000
# Given to a redelivered item still waiting on its earlier delivery when that is forgotten:
# it goes through a retry tier rather than hold its batch unacked for ever.
LOST_RESULT = "the result of its delivery before the broker session was lost never came"

Key = tuple[int, int]
OnResult = Callable[[DeliveryItem, DeliveryResult], None]


@dataclass(slots=True)
class _Entry:
    at: float
    result: DeliveryResult | None = None  # None: still with the messenger
    is_published: bool = False
    waiters: list[tuple[DeliveryItem, OnResult]] = field(default_factory=list)


def _key(item: DeliveryItem) -> Key:
    # A retry is the same message with the next attempt: a different delivery, never settled here.
    return item.message_id, item.attempt


class KeptResults:
    """Results by (message id, attempt); filled from the dispatcher's loop, read on redelivery."""

    def __init__(
        self,
        max_items: int = MAX_ITEMS,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_items = max_items
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def expect(self, item: DeliveryItem) -> None:
        """The item is with the messenger; its result will come through keep()."""
        with self._lock:
            if _key(item) not in self._entries:
                self._add(_key(item), _Entry(self._clock()))
            evicted = self._evict()
        _fail(evicted)

    def keep(self, item: DeliveryItem, result: DeliveryResult) -> None:
        """The item's result; a redelivery of it waiting for this result gets it now."""
        with self._lock:
            entry = self._entries.get(_key(item))
            if entry is None:
                entry = self._add(_key(item), _Entry(self._clock()))
            waiters: list[tuple[DeliveryItem, OnResult]] = []
            if not entry.is_published:
                entry.result = result
                waiters, entry.waiters = entry.waiters, []
            evicted = self._evict()
        for waiting, on_result in waiters:
            on_result(waiting, result)
        _fail(evicted)

    def mark_published(self, items: Iterable[DeliveryItem]) -> None:
        """These items' outcomes (or retries, dead letters) are with the broker already."""
        with self._lock:
            now = self._clock()
            for item in items:
                entry = self._entries.get(_key(item))
                if entry is None:
                    entry = self._add(_key(item), _Entry(now))
                entry.is_published = True
            evicted = self._evict()
        _fail(evicted)

    def unpublished(self, items: Sequence[DeliveryItem]) -> Sequence[DeliveryItem]:
        """The items whose outcomes are not known to be published: those the batch still owes."""
        with self._lock:
            published = {
                key
                for key in map(_key, items)
                if (entry := self._entries.get(key)) and entry.is_published
            }
        if not published:
            return items
        return [i for i in items if _key(i) not in published]

    def claim(self, items: Sequence[DeliveryItem], on_result: OnResult) -> list[DeliveryItem]:
        """Settle what is kept: on_result gets each known result now and each awaited one when
        it comes (from the dispatcher's loop). Returns the items nothing is kept for: to send.
        """
        to_send: list[DeliveryItem] = []
        known: list[tuple[DeliveryItem, DeliveryResult]] = []
        with self._lock:
            for item in items:
                entry = self._entries.get(_key(item))
                if entry is None or entry.is_published:
                    to_send.append(item)
                elif entry.result is None:
                    entry.waiters.append((item, on_result))
                else:
                    known.append((item, entry.result))
        for item, result in known:
            on_result(item, result)
        return to_send

    def prune(self) -> None:
        """Forget what is older than the age limit (cheap when there is nothing to forget)."""
        with self._lock:
            evicted = self._evict()
        _fail(evicted)

    def _add(self, key: Key, entry: _Entry) -> _Entry:
        self._entries[key] = entry
        return entry

    def _evict(self) -> list[tuple[DeliveryItem, OnResult]]:
        """Drop the oldest entries past the size or age limit; returns their waiters."""
        waiters: list[tuple[DeliveryItem, OnResult]] = []
        oldest_kept = self._clock() - self._max_age_s
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if len(self._entries) <= self._max_items and entry.at > oldest_kept:
                break
            del self._entries[key]
            waiters.extend(entry.waiters)
        return waiters


def _fail(waiters: list[tuple[DeliveryItem, OnResult]]) -> None:
    for item, on_result in waiters:
        on_result(item, transient(LOST_RESULT))
