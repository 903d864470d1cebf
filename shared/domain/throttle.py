"""Release throttling: token buckets, rolling-window ceilings, a fair split of a channel budget.

Pure arithmetic on values the scheduler keeps in the database, so several schedulers share
one budget: whoever holds the row lock refills, takes and writes the bucket back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

# A bucket holds at most this many seconds of its rate: enough to ride out a late tick,
# little enough that a campaign resumed or a window opened does not burst.
BURST_S = 1.0


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: dt.datetime


def capacity(rate: float, burst_s: float = BURST_S) -> float:
    """The most tokens a bucket of this rate may hold (at least one message)."""
    return max(1.0, rate * burst_s)


def refill(bucket: Bucket, now: dt.datetime, rate: float, burst_s: float = BURST_S) -> Bucket:
    """The bucket at `now`: `rate` tokens per second since its last refill, up to capacity."""
    elapsed = max(0.0, (now - bucket.at).total_seconds())
    tokens = min(capacity(rate, burst_s), bucket.tokens + rate * elapsed)
    return Bucket(tokens, max(now, bucket.at))


def available(bucket: Bucket) -> int:
    """Whole messages the bucket allows now."""
    return max(0, math.floor(bucket.tokens))


def take(bucket: Bucket, count: int) -> Bucket:
    """The bucket after `count` messages went out."""
    return Bucket(bucket.tokens - count, bucket.at)


def queue_cap(rate: float | None, max_queued: int, seconds: float = 2.0) -> int:
    """Most messages of a campaign out at once: a throttled one keeps only seconds' worth,
    so a pause or a new rate takes effect within them."""
    if rate is None:
        return max_queued
    return min(max_queued, max(1, math.ceil(rate * seconds)))


def batch_size(rate: float | None, tick_s: float, largest: int) -> int:
    """Items per delivery batch: a slow rate goes out in small batches, one tick's worth."""
    if rate is None:
        return largest
    return min(largest, max(1, math.ceil(rate * tick_s)))


def priority_concurrency(concurrency: int) -> int:
    """Delivery slots a sender keeps for notifications beside its campaign slots."""
    return max(4, concurrency // 4)


def window_room(count: int, used: int) -> int:
    """What a rolling window of `count` messages still allows after `used` went out in it."""
    return max(0, count - used)


def fair_split(budget: int, wants: Mapping[K, int], turn: int = 0) -> dict[K, int]:
    """Split `budget` evenly among `wants`; what a small want leaves goes to the others.

    Units that cannot be split evenly go one each to the wants in order, starting at
    position `turn`, so passing a counter spreads them over successive calls.
    """
    given = dict.fromkeys(wants, 0)
    hungry = [key for key, want in wants.items() if want > 0]
    remaining = budget
    while hungry and remaining >= len(hungry):
        share = remaining // len(hungry)
        filled = [key for key in hungry if wants[key] - given[key] <= share]
        for key in filled or hungry:
            portion = min(share, wants[key] - given[key])
            given[key] += portion
            remaining -= portion
        hungry = [key for key in hungry if given[key] < wants[key]]
    if hungry and remaining > 0:
        start = turn % len(hungry)
        for key in (hungry[start:] + hungry[:start])[:remaining]:
            given[key] += 1
    return given
