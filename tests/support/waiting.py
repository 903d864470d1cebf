"""wait_until(predicate, timeout): poll instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | Literal[False] | None], timeout: float, interval: float = 0.2
) -> T:
    """Return the first truthy value of predicate(); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        time.sleep(interval)
        last = predicate()
    return last
