"""Campaign rules: time range, send window, channel needs, deletable statuses."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.campaigns import (
    campaign_reasons,
    channel_reasons,
    delete_refusal,
    parse_clock,
    template_reasons,
    time_range_reasons,
    window_reasons,
)

UTC = dt.UTC
START = dt.datetime(2030, 1, 1, 9, tzinfo=UTC)


def test_ends_at_must_follow_starts_at() -> None:
    assert time_range_reasons(START, START + dt.timedelta(hours=1)) == {}
    assert time_range_reasons(START, START) == {"ends_at": ["must be after starts_at"]}
    assert "ends_at" in time_range_reasons(START, START - dt.timedelta(seconds=1))


def test_naive_datetimes_are_refused() -> None:
    reasons = time_range_reasons(START.replace(tzinfo=None), START)
    assert reasons == {"starts_at": ["must include a time zone offset"]}


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (dt.time(9), dt.time(21), True),
        (dt.time(22), dt.time(6), True),
        (dt.time(9), dt.time(9), False),
        (None, None, True),
        (dt.time(9), None, False),
    ],
)
def test_windows_may_wrap_midnight_but_not_be_empty(
    start: dt.time | None, end: dt.time | None, ok: bool
) -> None:
    assert (window_reasons(start, end) == {}) is ok


@pytest.mark.parametrize(("text", "clock"), [("00:00", dt.time(0)), ("23:59", dt.time(23, 59))])
def test_parses_clock_times(text: str, clock: dt.time) -> None:
    assert parse_clock(text) == clock


@pytest.mark.parametrize("text", ["24:00", "9:00", "09:60", "0900", ""])
def test_rejects_bad_clock_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_clock(text)


def test_email_needs_a_subject() -> None:
    values = {"channel": "email", "subject": None, "starts_at": START, "ends_at": None}
    assert campaign_reasons(values) == {"subject": ["is required when channel is email"]}
    assert campaign_reasons({**values, "channel": "http"}) == {}


def test_template_reasons_split_syntax_errors_from_extra_variables() -> None:
    reasons, extra = template_reasons({"text": "Hi {{ phone }} {{ nick }}", "subject": "{{"})
    assert extra == {"text": {"nick"}}
    assert list(reasons) == ["subject"]


@pytest.mark.parametrize(
    ("status", "deletable"),
    [
        ("scheduled", True),
        ("running", False),
        ("paused", False),
        ("cancelled", True),
        ("completed", True),
        ("expired", True),
    ],
)
def test_active_campaigns_cannot_be_deleted(status: str, deletable: bool) -> None:
    assert (delete_refusal(status) is None) is deletable


def test_a_channel_says_what_a_campaign_needs() -> None:
    assert channel_reasons("email", None) == {"subject": ["is required when channel is email"]}
    assert channel_reasons("http", None, "<p>hi</p>") == {"html": ["is only for channel email"]}
    assert channel_reasons("email", "Hello", "<p>hi</p>") == {}


def test_an_unknown_channel_is_named_with_the_known_ones() -> None:
    assert channel_reasons("fax", None) == {"channel": ["no channel 'fax'; known: http, email"]}
