import pytest

from shared.domain.retries import GiveUp, deferral_delay_ms, plan_retry

TIERS = (5_000, 30_000, 300_000)
NOW = 1_000_000.0
FAR = NOW + 86_400


def next_retry_delay_ms(attempt, delays_ms, max_attempts, deadline, now):
    """plan_retry's delay, or None when the item gives up for whatever reason."""
    decision = plan_retry(attempt, delays_ms, max_attempts, deadline, now)
    return None if isinstance(decision, GiveUp) else decision


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 5_000), (2, 30_000), (3, 300_000), (4, 300_000), (25, 300_000)],
)
def test_each_attempt_takes_its_tier_and_stays_at_the_last(attempt, expected):
    assert next_retry_delay_ms(attempt, TIERS, 0, FAR, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "expected"),
    [
        (1, 0, 5_000),
        (100, 0, 300_000),
        (1, 3, 5_000),
        (2, 3, 30_000),
        (3, 3, None),
        (4, 3, None),
        (1, 1, None),
    ],
)
def test_max_attempts_caps_the_retries_and_zero_means_no_cap(attempt, max_attempts, expected):
    assert next_retry_delay_ms(attempt, TIERS, max_attempts, FAR, NOW) == expected


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (NOW + 5.001, 5_000),
        (NOW + 5.0, None),
        (NOW + 4.0, None),
        (NOW - 1.0, None),
    ],
)
def test_no_retry_that_would_come_back_after_the_deadline(deadline, expected):
    assert next_retry_delay_ms(1, TIERS, 0, deadline, NOW) == expected


def test_no_tiers_means_no_retry():
    assert next_retry_delay_ms(1, (), 0, FAR, NOW) is None


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "deadline", "expected"),
    [
        (1, 0, FAR, 5_000),
        (3, 3, FAR, GiveUp.EXHAUSTED),
        (3, 3, NOW + 1.0, GiveUp.EXHAUSTED),
        (1, 0, NOW + 5.0, GiveUp.DEADLINE),
        (2, 3, NOW + 29.0, GiveUp.DEADLINE),
    ],
)
def test_giving_up_says_whether_attempts_or_time_ran_out(attempt, max_attempts, deadline, expected):
    assert plan_retry(attempt, TIERS, max_attempts, deadline, NOW) == expected


def test_no_tiers_means_the_item_is_out_of_attempts():
    assert plan_retry(1, (), 0, FAR, NOW) is GiveUp.EXHAUSTED


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [(FAR, 5_000), (NOW + 5.001, 5_000), (NOW + 5.0, None), (NOW - 1.0, None)],
)
def test_an_item_not_attempted_waits_the_shortest_tier_if_it_comes_back_in_time(deadline, expected):
    assert deferral_delay_ms((30_000, 5_000, 300_000), deadline, NOW) == expected


@pytest.mark.parametrize(
    ("retry_after_s", "expected"),
    [(None, 1_000), (0.5, 1_000), (1.0, 1_000), (2.0, 10_000), (30.0, 60_000), (600.0, 60_000)],
)
def test_retry_after_lengthens_the_wait_to_the_shortest_tier_that_covers_it(
    retry_after_s, expected
):
    delays = (1_000, 10_000, 60_000)
    assert plan_retry(1, delays, 0, deadline=1e12, now=0.0, retry_after_s=retry_after_s) == expected


def test_retry_after_never_shortens_a_later_tier():
    assert plan_retry(3, (1_000, 10_000, 60_000), 0, 1e12, 0.0, retry_after_s=2.0) == 60_000
