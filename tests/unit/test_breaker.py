import pytest

from shared.domain.breaker import BreakerPolicy, BreakerState, CircuitBreaker

POLICY = BreakerPolicy(failure_ratio=0.8, min_calls=10, open_s=5.0, trial_calls=3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def call(breaker, clock, is_failure):
    """One call as the dispatcher makes it: ask for a permit, then report the result."""
    permit = breaker.allow(clock.now)
    assert permit is not None
    return breaker.record(permit, is_failure, clock.now)


def opened_breaker(clock):
    breaker = CircuitBreaker(POLICY)
    for _ in range(POLICY.min_calls):
        call(breaker, clock, is_failure=True)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_stays_closed_below_the_minimum_number_of_calls():
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY)

    transitions = [call(breaker, clock, is_failure=True) for _ in range(POLICY.min_calls - 1)]

    assert transitions == [None] * (POLICY.min_calls - 1)
    assert breaker.is_closed


def test_opens_once_the_recent_failure_ratio_is_reached():
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY)
    for _ in range(2):
        call(breaker, clock, is_failure=False)

    transitions = [call(breaker, clock, is_failure=True) for _ in range(8)]

    assert transitions[:-1] == [None] * 7
    assert transitions[-1].state is BreakerState.OPEN
    assert (transitions[-1].failures, transitions[-1].calls) == (8, 10)
    assert breaker.allow(clock.now) is None


@pytest.mark.parametrize("every", [2, 3, 5])
def test_a_gateway_failing_a_minority_of_calls_never_opens_it(every):
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY)

    for n in range(1_000):
        call(breaker, clock, is_failure=n % every == 0)

    assert breaker.is_closed


def test_only_the_most_recent_calls_count():
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY)
    for _ in range(7):
        call(breaker, clock, is_failure=True)
    for _ in range(POLICY.min_calls):
        call(breaker, clock, is_failure=False)

    transitions = [call(breaker, clock, is_failure=True) for _ in range(7)]

    assert transitions == [None] * 7
    assert breaker.is_closed


def test_refuses_calls_until_open_s_has_passed():
    clock = FakeClock()
    breaker = opened_breaker(clock)

    clock.advance(POLICY.open_s - 0.01)

    assert breaker.allow(clock.now) is None


def test_half_open_lets_only_the_trial_calls_through():
    clock = FakeClock()
    breaker = opened_breaker(clock)
    clock.advance(POLICY.open_s)

    permits = [breaker.allow(clock.now) for _ in range(POLICY.trial_calls + 2)]

    assert breaker.state is BreakerState.HALF_OPEN
    assert all(p is not None for p in permits[: POLICY.trial_calls])
    assert permits[POLICY.trial_calls :] == [None, None]


def test_successful_trials_close_it_and_it_judges_afresh():
    clock = FakeClock()
    breaker = opened_breaker(clock)
    clock.advance(POLICY.open_s)
    permits = [breaker.allow(clock.now) for _ in range(POLICY.trial_calls)]

    transitions = [breaker.record(p, False, clock.now) for p in permits]

    assert transitions[:-1] == [None] * (POLICY.trial_calls - 1)
    assert transitions[-1].state is BreakerState.CLOSED
    assert breaker.is_closed
    # The failures that opened it are forgotten: a few new ones do not reopen it.
    assert [call(breaker, clock, is_failure=True) for _ in range(5)] == [None] * 5


def test_trials_failing_like_the_calls_that_opened_it_reopen_it_for_another_open_s():
    clock = FakeClock()
    breaker = opened_breaker(clock)
    clock.advance(POLICY.open_s)
    permits = [breaker.allow(clock.now) for _ in range(POLICY.trial_calls)]

    transitions = [breaker.record(p, True, clock.now) for p in permits]

    transition = transitions[-1]
    assert transition.state is BreakerState.OPEN
    assert breaker.allow(clock.advance(POLICY.open_s - 0.01)) is None
    assert breaker.allow(clock.advance(0.01)) is not None


def test_one_failed_trial_among_successes_closes_it_for_a_flaky_gateway():
    clock = FakeClock()
    breaker = opened_breaker(clock)
    clock.advance(POLICY.open_s)
    permits = [breaker.allow(clock.now) for _ in range(POLICY.trial_calls)]

    transitions = [breaker.record(p, i == 0, clock.now) for i, p in enumerate(permits)]

    assert transitions[-1].state is BreakerState.CLOSED
    assert breaker.is_closed


def test_results_of_calls_started_before_it_opened_do_not_count_as_trials():
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY)
    stale = [p for _ in range(5) if (p := breaker.allow(clock.now)) is not None]
    for _ in range(POLICY.min_calls):
        call(breaker, clock, is_failure=True)
    clock.advance(POLICY.open_s)
    trial = breaker.allow(clock.now)
    assert trial is not None

    late = [breaker.record(p, False, clock.now) for p in stale]
    late += [breaker.record(p, True, clock.now) for p in stale]

    assert late == [None] * 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.record(trial, False, clock.now) is None


def test_zero_min_calls_turns_it_off():
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_ratio=0.8, min_calls=0, open_s=5.0))

    transitions = [call(breaker, clock, is_failure=True) for _ in range(100)]

    assert transitions == [None] * 100
    assert breaker.is_closed
