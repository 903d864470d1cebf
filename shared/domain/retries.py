"""Retry tiers: the delay before the next attempt of a transiently failed item, or give up."""

from __future__ import annotations

from enum import StrEnum


class GiveUp(StrEnum):
    """Why a transiently failed item gets no further attempt."""

    EXHAUSTED = "exhausted"  # out of attempts (or no tiers at all): the message failed
    DEADLINE = "deadline"  # any retry would come back after the campaign's end: it expired


def plan_retry(
    attempt: int,
    delays_ms: tuple[int, ...],
    max_attempts: int,
    deadline: float,
    now: float,
    retry_after_s: float | None = None,
) -> int | GiveUp:
    """Delay before retrying after `attempt` failed (1-based), or why the item must give up.

    Attempt n waits delays_ms[n - 1], staying at the last tier once past the end; a gateway's
    Retry-After lengthens that to the shortest tier that waits at least as long (the longest
    when none does). There is no point in a retry that would come back after the deadline.
    """
    if not delays_ms or (max_attempts > 0 and attempt >= max_attempts):
        return GiveUp.EXHAUSTED
    delay_ms = delays_ms[min(max(attempt, 1), len(delays_ms)) - 1]
    if retry_after_s is not None and delay_ms < retry_after_s * 1000:
        longer = [d for d in delays_ms if d >= retry_after_s * 1000]
        delay_ms = min(longer) if longer else max(delays_ms)
    if now + delay_ms / 1000 >= deadline:
        return GiveUp.DEADLINE
    return delay_ms


def deferral_delay_ms(delays_ms: tuple[int, ...], deadline: float, now: float) -> int | None:
    """Delay for an item that was not attempted (its channel is paused): the shortest tier.

    None when even that would bring it back after the deadline: the item expires unsent.
    """
    if not delays_ms:
        return None
    delay_ms = min(delays_ms)
    return delay_ms if now + delay_ms / 1000 < deadline else None
