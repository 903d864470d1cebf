"""ChannelBreaker: a channel's circuit breaker with its log lines and metrics.

Used on the dispatcher's event loop only. It logs once per change of state, never per item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared import metrics
from shared.config import Settings
from shared.domain.breaker import BreakerPolicy, BreakerState, CircuitBreaker, Transition
from shared.domain.outcomes import DeliveryResult

log = logging.getLogger(__name__)


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        failure_ratio=settings.breaker_failure_ratio,
        min_calls=settings.breaker_min_calls,
        open_s=settings.breaker_open_s,
    )


class ChannelBreaker:
    """Asks the pure breaker before each delivery and tells it each transient failure."""

    def __init__(
        self,
        channel: str,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self._breaker = CircuitBreaker(policy)
        self._clock = clock
        self._is_open = metrics.SENDER_CIRCUIT_OPEN.labels(channel)
        self._opened = metrics.SENDER_CIRCUIT_OPENED.labels(channel)
        self._is_open.set(0)

    @property
    def state(self) -> str:
        """closed, open or half-open (read from any thread: one attribute, no lock needed)."""
        return str(self._breaker.state)

    def allow(self) -> int | None:
        """A permit for one delivery, or None: do not call the channel now."""
        return self._breaker.allow(self._clock())

    def record(self, permit: int, result: DeliveryResult) -> None:
        transition = self._breaker.record(permit, result.is_transient, self._clock())
        if transition is not None:
            self._report(transition, result)

    def _report(self, transition: Transition, result: DeliveryResult) -> None:
        policy = self._breaker.policy
        if transition.state is BreakerState.OPEN:
            self._is_open.set(1)
            self._opened.inc()
            log.warning(
                "%s circuit opened: %s (last: %s); holding deliveries back for %.1fs, "
                "then %d trial deliveries",
                self.channel,
                transition.cause,
                result.error,
                policy.open_s,
                policy.trial_calls,
            )
        elif transition.state is BreakerState.CLOSED:
            self._is_open.set(0)
            log.warning(
                "%s circuit closed: %d trial deliveries succeeded; delivering again",
                self.channel,
                transition.calls,
            )
