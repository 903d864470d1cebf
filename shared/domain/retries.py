"""Retry tiers: the delay before the next attempt of a transiently failed item, or give up."""

from __future__ import annotations


def next_retry_delay_ms(
    attempt: int,
    delays_ms: tuple[int, ...],
    max_attempts: int,
    deadline: float,
    now: float,
) -> int | None:
    """Delay before retrying after `attempt` failed (1-based); None when the item must give up.

    Attempt n waits delays_ms[n - 1], staying at the last tier once past the end. There is
    no point in a retry that would come back after the campaign's deadline.
    """
    if not delays_ms:
        return None
    if max_attempts > 0 and attempt >= max_attempts:
        return None
    delay_ms = delays_ms[min(max(attempt, 1), len(delays_ms)) - 1]
    if now + delay_ms / 1000 >= deadline:
        return None
    return delay_ms
