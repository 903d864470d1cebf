"""A campaign's finish time, estimated from its audience per time zone, send window and rate.

An estimate, and documented as one: it assumes the rate (the campaign's limit, the channel's
ceiling, or DEFAULT_THROUGHPUT_PER_S) is reached at once and held, that each zone's messages
go out from the moment its window opens, and it ignores retries and other campaigns.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.domain.windows import next_closing, next_opening

# Assumed when neither the campaign nor the channel sets a ceiling: a conservative figure for
# a couple of senders against a responsive gateway; real throughput depends on the gateway.
DEFAULT_THROUGHPUT_PER_S = 500.0
DAY_S = 86_400.0

Window = tuple[dt.time, dt.time]


@dataclass(frozen=True, slots=True)
class Forecast:
    rate_per_s: float
    rate_basis: str  # rate_limit | channel_limit | default_throughput
    starts_at: dt.datetime
    finishes_at: dt.datetime
    duration_s: int
    fits_before_end: bool


def sending_rate(rate_limit: int | None, channel_ceiling: float | None) -> tuple[float, str]:
    """The slowest of the campaign's limit and the channel's ceiling, else the default.

    On a tie the operator's own setting names the basis: the campaign's, then the channel's.
    """
    candidates = []
    if rate_limit:
        candidates.append((float(rate_limit), "rate_limit"))
    if channel_ceiling:
        candidates.append((channel_ceiling, "channel_limit"))
    candidates.append((DEFAULT_THROUGHPUT_PER_S, "default_throughput"))
    return min(candidates, key=lambda candidate: candidate[0])


def window_span_s(window: Window) -> float:
    """Length of a daily window in seconds; it may wrap midnight."""
    start, end = (t.hour * 3600 + t.minute * 60 for t in window)
    return (end - start) % DAY_S or DAY_S


def zone_finish(at: dt.datetime, timezone: str, window: Window, need_s: float) -> dt.datetime:
    """When `need_s` seconds of sending end for one zone, window by window, from `at`."""
    opens = next_opening(at, timezone, *window)
    closes = next_closing(opens, timezone, *window)
    if closes is None:
        return opens + dt.timedelta(seconds=need_s)
    first_span = (closes - opens).total_seconds()
    if need_s <= first_span:
        return opens + dt.timedelta(seconds=need_s)
    rest = need_s - first_span
    span = window_span_s(window)
    later_days = math.ceil(rest / span)
    reopens = next_opening(closes, timezone, *window)
    tail = rest - (later_days - 1) * span
    return reopens + dt.timedelta(seconds=(later_days - 1) * DAY_S + tail)


def forecast(
    audience: Sequence[tuple[str, int]],
    *,
    now: dt.datetime,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    window: Window | None,
    rate: tuple[float, str],
) -> Forecast:
    """Estimate when the last of `audience` ((zone, recipients) pairs) would be sent."""
    per_s, basis = rate
    start = max(now, starts_at)
    zones = [(tz, n) for tz, n in audience if n > 0]
    total = sum(n for _, n in zones)
    finish = start + dt.timedelta(seconds=total / per_s)
    if window is not None and zones:
        # The rate is shared by every zone, and each zone also waits for its own windows.
        shared = min(next_opening(start, tz, *window) for tz, _ in zones)
        finish = max(
            shared + dt.timedelta(seconds=total / per_s),
            *(zone_finish(start, tz, window, n / per_s) for tz, n in zones),
        )
    # Whole minutes: the estimate is not more precise than that.
    finish = ceil_minute(finish) if total else start
    return Forecast(
        rate_per_s=per_s,
        rate_basis=basis,
        starts_at=start,
        finishes_at=finish,
        duration_s=math.ceil((finish - start).total_seconds()),
        fits_before_end=finish <= ends_at,
    )


def ceil_minute(at: dt.datetime) -> dt.datetime:
    floored = at.replace(second=0, microsecond=0)
    return floored if floored == at else floored + dt.timedelta(minutes=1)
