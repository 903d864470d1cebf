"""A campaign's SMS is valid until the earlier of the campaign's end and the close of the
recipient's send window in the recipient's own zone."""

from __future__ import annotations

import datetime as dt

from services.scheduler.releaser import ValidUntil
from shared.db.queries.scheduling import Releasable

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def campaign(ends_in_h: float, window: tuple[dt.time, dt.time] | None) -> Releasable:
    start, end = window if window else (None, None)
    return Releasable(
        id=1,
        channel="http",
        text="Hi",
        subject=None,
        ends_at=NOW + dt.timedelta(hours=ends_in_h),
        queued=0,
        window_start=start,
        window_end=end,
    )


def test_without_a_window_it_is_the_campaign_end() -> None:
    valid_until = ValidUntil(campaign(5, None), NOW)
    assert valid_until("Europe/Moscow") == (NOW + dt.timedelta(hours=5)).timestamp()


def test_a_window_closing_first_in_the_recipients_zone_wins() -> None:
    # 09:00-21:00 local: Moscow (UTC+3) closes at 18:00 UTC, New York (UTC-5) at 02:00 UTC.
    valid_until = ValidUntil(campaign(48, (dt.time(9), dt.time(21))), NOW)
    moscow = dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC).timestamp()
    new_york = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC).timestamp()
    assert valid_until("Europe/Moscow") == moscow
    assert valid_until("America/New_York") == new_york


def test_a_campaign_ending_before_the_window_closes_ends_it() -> None:
    valid_until = ValidUntil(campaign(1, (dt.time(9), dt.time(21))), NOW)
    assert valid_until("Europe/Moscow") == (NOW + dt.timedelta(hours=1)).timestamp()


def test_a_whole_day_window_never_closes() -> None:
    valid_until = ValidUntil(campaign(30, (dt.time(0), dt.time(0))), NOW)
    assert valid_until("Asia/Tokyo") == (NOW + dt.timedelta(hours=30)).timestamp()
