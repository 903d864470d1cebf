"""Token buckets, channel ceilings and the fair split of a channel's budget."""

import datetime as dt

import pytest

from shared.config import ChannelLimits, parse_channel_limits
from shared.domain.throttle import (
    Bucket,
    available,
    batch_size,
    fair_split,
    queue_cap,
    refill,
    take,
    window_room,
)

START = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)


def later(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def test_a_bucket_released_every_tick_lets_out_its_rate_per_second():
    bucket, released = Bucket(0.0, START), 0

    for tick in range(1, 301):  # 60 s of 0.2 s ticks
        bucket = refill(bucket, later(tick * 0.2), rate=37)
        count = available(bucket)
        bucket = take(bucket, count)
        released += count

    assert released in (60 * 37 - 1, 60 * 37)


def test_slow_rates_release_single_messages_smoothly():
    bucket, per_second = Bucket(0.0, START), []

    for second in range(10):
        released = 0
        for tick in range(1, 6):
            bucket = refill(bucket, later(second + tick * 0.2), rate=2)
            count = available(bucket)
            bucket, released = take(bucket, count), released + count
        per_second.append(released)

    assert per_second == [2] * 10


def test_an_idle_bucket_holds_one_second_of_its_rate():
    bucket = refill(Bucket(0.0, START), later(3600), rate=50)

    assert available(bucket) == 50


def test_a_bucket_holds_at_least_one_message():
    assert available(refill(Bucket(0.0, START), later(10), rate=0.1)) == 1


def test_a_clock_that_steps_back_adds_nothing():
    bucket = refill(Bucket(5.0, later(10)), later(9), rate=100)

    assert bucket == Bucket(5.0, later(10))


def test_unused_tokens_wait_for_the_next_tick():
    bucket = refill(Bucket(0.0, START), later(0.5), rate=10)

    bucket = take(bucket, 2)

    assert available(refill(bucket, later(0.7), rate=10)) == 5


@pytest.mark.parametrize(
    ("budget", "wants", "expected"),
    [
        (100, {"large": 10_000, "small": 10}, {"large": 90, "small": 10}),
        (100, {"a": 10_000, "b": 10_000}, {"a": 50, "b": 50}),
        (90, {"a": 1000, "b": 20, "c": 1000}, {"a": 35, "b": 20, "c": 35}),
        (100, {"a": 30, "b": 20}, {"a": 30, "b": 20}),
        (100, {"a": 0, "b": 500}, {"a": 0, "b": 100}),
        (0, {"a": 5}, {"a": 0}),
        (7, {}, {}),
    ],
)
def test_a_channel_budget_is_shared_evenly_and_unused_shares_move_on(budget, wants, expected):
    assert fair_split(budget, wants) == expected


def test_units_that_do_not_split_evenly_take_turns():
    wants = {"a": 100, "b": 100, "c": 100}

    rounds = [fair_split(2, wants, turn=turn) for turn in range(3)]

    assert [sum(r[key] for r in rounds) for key in wants] == [2, 2, 2]


def test_a_split_never_exceeds_the_budget_or_a_want():
    wants = {i: (i * 37) % 101 for i in range(12)}

    for budget in range(0, 700, 13):
        given = fair_split(budget, wants, turn=budget)
        assert sum(given.values()) == min(budget, sum(wants.values()))
        assert all(given[key] <= wants[key] for key in wants)


def test_channel_limits_parse_rates_and_rolling_windows():
    limits = parse_channel_limits("http=500, email=50", "email=2000/86400,email=100/3600")

    assert limits == {
        "http": ChannelLimits(500.0, ()),
        "email": ChannelLimits(50.0, ((2000, 86400.0), (100, 3600.0))),
    }
    assert limits["email"].longest_window_s == 86400.0
    assert parse_channel_limits("", "") == {}


@pytest.mark.parametrize(
    ("rates", "windows", "variable"),
    [
        ("http", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("http=0", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("http=500,email=fifty", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("http=-5", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("http=inf", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("http=5,http=6", "", "HERALD_CHANNEL_RATE_LIMITS"),
        ("", "email=2000", "HERALD_CHANNEL_WINDOW_LIMITS"),
        ("", "email=5/0", "HERALD_CHANNEL_WINDOW_LIMITS"),
        ("", "email=-1/60", "HERALD_CHANNEL_WINDOW_LIMITS"),
        ("", "email=2.5/60", "HERALD_CHANNEL_WINDOW_LIMITS"),
        ("", "email=fifty/60", "HERALD_CHANNEL_WINDOW_LIMITS"),
    ],
)
def test_malformed_channel_limits_are_refused_naming_the_variable(rates, windows, variable):
    with pytest.raises(ValueError, match=f"^{variable} "):
        parse_channel_limits(rates, windows)


def test_a_window_of_no_messages_closes_the_channel():
    assert parse_channel_limits("", "email=0/60") == {"email": ChannelLimits(None, ((0, 60.0),))}


def test_a_rolling_window_allows_what_is_left_of_it():
    assert (window_room(2000, 1990), window_room(2000, 2100)) == (10, 0)


def test_a_throttled_campaign_keeps_two_seconds_of_messages_out():
    assert (queue_cap(50, 20_000), queue_cap(0.2, 20_000), queue_cap(None, 20_000)) == (
        100,
        1,
        20_000,
    )


def test_slow_rates_go_out_in_batches_of_one_tick():
    assert (batch_size(20, 0.2, 100), batch_size(5000, 0.2, 100), batch_size(None, 0.2, 100)) == (
        4,
        100,
        100,
    )
