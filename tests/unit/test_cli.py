"""The CLI's pure parts: times, windows, durations, the progress line, errors, tokens, routes."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from services.cli.campaigns import (
    duration,
    gateway_lines,
    parse_when,
    parse_window,
    preview_lines,
)
from services.cli.client import ApiError
from services.cli.config import CliConfig, token_from
from services.cli.deadletters import fresh_headers, origin
from services.cli.progress import progress_line

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("now", "2030-01-01T12:00:00+00:00"),
        ("+90m", "2030-01-01T13:30:00+00:00"),
        ("+2h", "2030-01-01T14:00:00+00:00"),
        ("+1d", "2030-01-02T12:00:00+00:00"),
        ("2030-03-01T09:00:00+03:00", "2030-03-01T09:00:00+03:00"),
        ("2030-03-01T09:00:00Z", "2030-03-01T09:00:00+00:00"),
    ],
)
def test_times_are_absolute_or_relative_and_always_zoned(given: str, expected: str) -> None:
    assert parse_when(given, NOW) == expected


@pytest.mark.parametrize("given", ["2030-03-01T09:00:00", "tomorrow", "+2w", "-1h"])
def test_naive_or_unknown_times_are_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_when(given, NOW)


def test_windows_are_two_clock_times() -> None:
    assert parse_window("21:00-09:00") == {"start": "21:00", "end": "09:00"}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_window("9-21")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (600, "10 min"), (3 * 3600 + 300, "3 h 05 min"),
     (2 * 86400 + 4 * 3600, "2 d 04 h")],
)  # fmt: skip
def test_durations_are_rough_and_readable(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_progress_line_shows_done_total_percent_rate_and_eta() -> None:
    stats = {"total": 10_000, "done": 4_213, "percent_done": 42.13, "rate_per_s": 1234.5,
             "eta_s": 4.7, "status": "running"}  # fmt: skip

    line = progress_line(stats, width=10)

    assert line == "[####......]  4,213/10,000  42.1%  1,234.5/s  ETA 4 s  running"
    assert "ETA -" in progress_line({**stats, "eta_s": None}, width=10)


def test_the_progress_line_shows_delivered_and_the_rate_once_receipts_come() -> None:
    stats = {"total": 100, "done": 100, "percent_done": 100.0, "rate_per_s": 0.0, "eta_s": 0.0,
             "status": "completed", "sent": 100, "delivered": 0, "undelivered": 0,
             "delivery_rate": 0.0}  # fmt: skip

    assert "delivered" not in progress_line(stats, width=10)
    line = progress_line({**stats, "delivered": 94, "undelivered": 5, "delivery_rate": 0.94})
    assert line.endswith("completed  delivered 94 (94.0%)")


def test_api_errors_list_every_nested_field() -> None:
    error = ApiError(
        422,
        "Unprocessable Entity",
        {"json": {"filter": {"tags": {"0": ["too long"]}}, "name": ["required"]},
         "query": {"limit": ["too big"]}},
    )  # fmt: skip

    assert error.lines() == [
        "error: 422 Unprocessable Entity",
        "  filter.tags.0: too long",
        "  name: required",
        "  limit: too big",
    ]


@pytest.mark.parametrize(
    ("spec", "token"),
    [("r:read,w:write", "w"), ("a:read,b:read", "a"), ("", ""), ("broken", "")],
)
def test_the_token_is_the_first_write_token(spec: str, token: str) -> None:
    assert token_from(spec) == token


def test_the_environment_wins_over_dot_env(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HERALD_API_URL=http://file:1/\nHERALD_API_TOKENS=f:write\n")

    from_file = CliConfig.from_env({}, env_file)
    from_env = CliConfig.from_env(
        {"HERALD_API_TOKEN": "e", "HERALD_API_URL": "http://e:2"}, env_file
    )

    assert (from_file.api_url, from_file.token) == ("http://file:1", "f")
    assert (from_env.api_url, from_env.token) == ("http://e:2", "e")


def test_dead_letters_go_back_where_they_came_from() -> None:
    parked = {"x-herald-error": "HTTP 500", "x-correlation-id": "c"}
    rejected = {"x-death": [{"exchange": "outcomes", "reason": "delivery_limit"}],
                "x-first-death-reason": "delivery_limit", "x-delivery-count": 51}  # fmt: skip

    assert origin("http", parked) == ("deliveries", "http")
    assert origin("outcome.http", rejected) == ("outcomes", "outcome.http")
    assert fresh_headers(parked) == {"x-correlation-id": "c", "x-herald-replays": 1}
    assert fresh_headers({**rejected, "x-herald-replays": 2}) == {"x-herald-replays": 3}


def test_the_preview_says_who_is_left_out_and_whether_it_fits() -> None:
    preview = {
        "matched": 10_000, "recipients": 9_000, "in_window_now": 4_000,
        "left_out": {"total": 1_000, "no_phone": 0, "no_email": 800, "opted_out": 200},
        "forecast": {"rate_per_s": 100.0, "rate_basis": "rate_limit", "duration_s": 4_320,
                     "finishes_at": "2030-01-01T13:12:00+00:00", "fits_before_end": False},
    }  # fmt: skip

    lines = preview_lines("spring", preview)

    assert lines[1] == "  recipients     9,000 of 10,000 matching clients"
    assert lines[2] == "  left out       1,000 (800 no e-mail, 200 opted out)"
    assert lines[4] == (
        "  forecast       100/s (rate limit); done around 2030-01-01 13:12 UTC, in 1 h 12 min,"
        " AFTER ends_at: the rest expires"
    )


SMS_PREVIEW = {
    "messages": {"GSM-7": 8_000, "UCS-2": 1_000}, "segments": 11_000, "max_segments": 10,
    "forced_ucs2_by": "Ж", "cost": None,
    "routes": [
        {"route": "default", "messages": 8_000, "segments": 9_000, "cost": "31.50"},
        {"route": "prefix 7912", "messages": 1_000, "segments": 2_000, "cost": None},
    ],
}  # fmt: skip


def test_the_preview_shows_segments_by_encoding_and_cost_per_route() -> None:
    preview = {
        "matched": 9_000, "recipients": 9_000, "in_window_now": 9_000,
        "left_out": {"total": 0, "no_phone": 0, "no_email": 0, "opted_out": 0},
        "forecast": {"rate_per_s": 100.0, "rate_basis": "rate_limit", "duration_s": 90,
                     "finishes_at": "2030-01-01T13:12:00+00:00", "fits_before_end": True},
        "sms": SMS_PREVIEW,
    }  # fmt: skip

    lines = preview_lines("spring", preview)

    assert lines[5:] == [
        "  sms            8,000 GSM-7, 1,000 UCS-2 (forced by 'Ж')",
        "  segments       11,000 (at most 10 per message)",
        "    default                  8,000 messages     9,000 segments  cost 31.50",
        "    prefix 7912              1,000 messages     2,000 segments  cost unknown",
        "  cost           unknown: no price for prefix 7912",
    ]
    priced = {**SMS_PREVIEW, "cost": "31.50", "routes": SMS_PREVIEW["routes"][:1]}
    assert preview_lines("spring", {**preview, "sms": priced})[-1] == "  cost           31.50"


def test_campaign_stats_show_segments_and_a_row_per_gateway() -> None:
    figures = {
        "segments_sent": 1_234,
        "by_gateway": {
            "beta": {"sent": 10, "delivered": 7, "undelivered": 1, "segments": 20},
            "alpha": {"sent": 1_000, "delivered": 900, "undelivered": 50, "segments": 1_214},
        },
    }

    assert gateway_lines(figures) == [
        "  segments  1,234 sent",
        "  GATEWAY                   SENT DELIVERED  UNDELIV.  SEGMENTS",
        "  alpha                    1,000       900        50     1,214",
        "  beta                        10         7         1        20",
    ]
    assert gateway_lines({"segments_sent": 0, "by_gateway": {}}) == ["  segments  0 sent"]
