"""CircuitBreaker: when most recent calls to a channel fail, stop calling it for a while.

Pure decision logic: every call takes `now` (monotonic seconds), so tests drive it with a
fake clock. Closed -> open when the recent failure ratio is too high; open -> half-open after
`open_s`; a few trial calls then close it again, or reopen it when they fail as often as
the calls that opened it (one failed trial proves little against a gateway that is merely
flaky).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_ratio: float  # open when at least this share of the recent calls failed
    min_calls: int  # how many recent calls are judged; no verdict on fewer (0: never opens)
    open_s: float  # how long to stop calling before trying again
    trial_calls: int = 10  # calls let through while half-open, judged together


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state worth one log line: the new state and what caused it."""

    state: BreakerState
    previous: BreakerState
    failures: int  # failures among the calls judged (the window, or the trials)
    calls: int

    @property
    def cause(self) -> str:
        """Why the breaker opened, for its log line."""
        if self.previous is BreakerState.HALF_OPEN:
            return "a trial delivery failed"
        return f"{self.failures} of the last {self.calls} deliveries failed"


class CircuitBreaker:
    """Judges the last `min_calls` results; lets `trial_calls` calls through when half-open.

    allow() hands out a permit (the breaker's current epoch) and record() ignores results of
    permits from an earlier epoch: a call started before the breaker opened says nothing
    about the trials made after it.
    """

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state = BreakerState.CLOSED
        self._epoch = 0
        self._window: deque[bool] = deque(maxlen=max(1, policy.min_calls))
        self._failures = 0
        self._opened_at = 0.0
        self._trials_started = 0
        self._trial_successes = 0
        self._trial_failures = 0

    def allow(self, now: float) -> int | None:
        """A permit for one call, or None when the call must not be made now."""
        if self.state is BreakerState.CLOSED:
            return self._epoch
        if self.state is BreakerState.OPEN:
            if now - self._opened_at < self.policy.open_s:
                return None
            self._enter(BreakerState.HALF_OPEN)
        if self._trials_started >= self.policy.trial_calls:
            return None
        self._trials_started += 1
        return self._epoch

    def record(self, permit: int, is_failure: bool, now: float) -> Transition | None:
        """Count the result of a permitted call; returns the transition it caused, if any."""
        if permit != self._epoch:
            return None
        if self.state is BreakerState.HALF_OPEN:
            return self._record_trial(is_failure, now)
        return self._record_closed(is_failure, now)

    @property
    def is_closed(self) -> bool:
        return self.state is BreakerState.CLOSED

    def _record_closed(self, is_failure: bool, now: float) -> Transition | None:
        if self.policy.min_calls <= 0:
            return None
        window = self._window
        if len(window) == window.maxlen and window[0]:
            self._failures -= 1
        window.append(is_failure)
        self._failures += is_failure
        calls = len(window)
        if calls < self.policy.min_calls or self._failures < self.policy.failure_ratio * calls:
            return None
        failures = self._failures
        self._open(now)
        return Transition(BreakerState.OPEN, BreakerState.CLOSED, failures, calls)

    def _record_trial(self, is_failure: bool, now: float) -> Transition | None:
        self._trial_failures += is_failure
        self._trial_successes += not is_failure
        failures, calls = self._trial_failures, self._trial_failures + self._trial_successes
        if failures >= math.ceil(self.policy.failure_ratio * self.policy.trial_calls):
            self._open(now)
            return Transition(BreakerState.OPEN, BreakerState.HALF_OPEN, failures, calls)
        if calls < self.policy.trial_calls:
            return None
        self._enter(BreakerState.CLOSED)
        return Transition(BreakerState.CLOSED, BreakerState.HALF_OPEN, failures, calls)

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._enter(BreakerState.OPEN)

    def _enter(self, state: BreakerState) -> None:
        self.state = state
        self._epoch += 1
        self._window.clear()
        self._failures = 0
        self._trials_started = 0
        self._trial_successes = 0
        self._trial_failures = 0
