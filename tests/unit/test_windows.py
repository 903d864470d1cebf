"""Send windows in recipient-local time, driven by a controllable clock across zones and DST."""

import datetime as dt

import pytest

from services.scheduler.windows import NEVER, next_check
from shared.domain.windows import is_open, next_closing, next_opening

T = dt.time
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "local", "expected"),
    [
        (T(9), T(21), T(9), True),
        (T(9), T(21), T(20, 59), True),
        (T(9), T(21), T(21), False),
        (T(9), T(21), T(8, 59), False),
        (T(22), T(6), T(23), True),
        (T(22), T(6), T(0), True),
        (T(22), T(6), T(5, 59), True),
        (T(22), T(6), T(6), False),
        (T(22), T(6), T(12), False),
        (T(0), T(0), T(12), True),
    ],
)
def test_a_window_is_open_from_its_start_until_its_end(start, end, local, expected):
    assert is_open(start, end, local) is expected


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        # 12:00 UTC: local 00:00 in UTC-12, 02:00 next day in UTC+14; window 09:00-21:00.
        ("Etc/GMT+12", "2026-06-10T12:00", "2026-06-10T21:00"),
        ("Pacific/Kiritimati", "2026-06-10T12:00", "2026-06-10T19:00"),
        ("Asia/Kolkata", "2026-06-10T12:00", "2026-06-10T12:00"),
        ("America/New_York", "2026-06-10T12:00", "2026-06-10T13:00"),
        ("Asia/Tokyo", "2026-06-10T12:00", "2026-06-11T00:00"),
        ("UTC", "2026-06-10T21:00", "2026-06-11T09:00"),
    ],
)
def test_next_opening_is_the_local_start_in_each_zone(zone, now, expected):
    assert next_opening(at(now), zone, T(9), T(21)) == at(expected)


def test_next_opening_is_now_while_the_window_is_open():
    now = dt.datetime(2026, 6, 10, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=3)))

    opening = next_opening(now, "Europe/Moscow", T(9), T(21))

    assert opening == now
    assert opening.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-06-10T20:00", "2026-06-10T20:00"),  # 22:00 in Paris: open
        ("2026-06-10T03:30", "2026-06-10T03:30"),  # 05:30: still open after midnight
        ("2026-06-10T04:00", "2026-06-10T20:00"),  # 06:00: closed until 22:00
        ("2026-06-10T12:00", "2026-06-10T20:00"),
    ],
)
def test_a_window_that_wraps_midnight_opens_in_the_evening(now, expected):
    assert next_opening(at(now), "Europe/Paris", T(22), T(6)) == at(expected)


def test_the_same_window_opens_an_hour_earlier_in_utc_after_spring_forward():
    before = next_opening(at("2026-03-27T21:00"), "Europe/Paris", T(9), T(21))
    after = next_opening(at("2026-03-28T21:00"), "Europe/Paris", T(9), T(21))

    assert (before, after) == (at("2026-03-28T08:00"), at("2026-03-29T07:00"))


def test_a_start_inside_the_skipped_hour_opens_when_the_clock_jumps():
    # Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never happens.
    opening = next_opening(at("2026-03-28T23:00"), "Europe/Paris", T(2, 30), T(5))

    assert opening == at("2026-03-29T01:00")


def test_a_start_inside_the_repeated_hour_opens_at_its_first_occurrence():
    # Paris, 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00 UTC; 02:30 happens twice.
    opening = next_opening(at("2026-10-24T22:00"), "Europe/Paris", T(2, 30), T(6))

    assert opening == at("2026-10-25T00:30")


def test_a_window_inside_the_repeated_hour_opens_again_on_its_second_pass():
    # 02:45 CEST has left 02:00-02:30; the clock reads 02:00 again at 02:00 CET.
    opening = next_opening(at("2026-10-25T00:45"), "Europe/Paris", T(2), T(2, 30))

    assert opening == at("2026-10-25T01:00")


def test_an_american_window_follows_its_own_dst_date():
    # New York springs forward on 2026-03-08, three weeks before Europe.
    opening = next_opening(at("2026-03-08T03:00"), "America/New_York", T(9), T(17))

    assert opening == at("2026-03-08T13:00")


def test_next_closing_is_the_local_end_even_past_midnight():
    assert next_closing(at("2026-06-10T21:00"), "Europe/Paris", T(22), T(6)) == at(
        "2026-06-11T04:00"
    )


def test_a_whole_day_window_never_closes():
    assert next_closing(at("2026-06-10T21:00"), "Europe/Paris", T(8), T(8)) is None


def test_the_scheduler_looks_again_when_the_window_first_closes_in_any_zone():
    # 12:00 UTC is 20:45 in Australia/Eucla (UTC+8:45): the next 21:00 anywhere.
    assert next_check(at("2026-06-10T12:00"), (T(9), T(21))) == at("2026-06-10T12:15")


def test_a_window_open_all_day_needs_no_second_look():
    assert next_check(at("2026-06-10T12:00"), (T(8), T(8))) == NEVER
    assert next_check(at("2026-06-10T12:00"), None) is None
