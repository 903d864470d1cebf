"""Send windows in the recipient's local time: is a window open, when does it next open or close.

Windows are wall-clock times in an IANA zone and may wrap midnight (22:00-06:00). A boundary
that falls in a skipped hour (DST gap) takes effect at the first valid instant after it; one
that falls in a repeated hour (DST fold) happens at each occurrence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

UTC = dt.UTC


def is_open(start: dt.time, end: dt.time, local: dt.time) -> bool:
    """Whether the local wall-clock time falls in [start, end), wrapping midnight if end < start.

    A window whose start equals its end spans the whole day.
    """
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_opening(now: dt.datetime, tz: str, start: dt.time, end: dt.time) -> dt.datetime:
    """The first instant at or after `now` when the window is open in zone `tz` (aware UTC)."""
    zone = ZoneInfo(tz)
    if is_open(start, end, now.astimezone(zone).time()):
        return now.astimezone(UTC)
    return next_wall_clock(now, zone, start)


def next_closing(now: dt.datetime, tz: str, start: dt.time, end: dt.time) -> dt.datetime | None:
    """The first instant after `now` when the window closes in zone `tz`; None if it never does."""
    if start == end:
        return None
    return next_wall_clock(now, ZoneInfo(tz), end)


def next_wall_clock(now: dt.datetime, zone: ZoneInfo, clock: dt.time) -> dt.datetime:
    """The first instant strictly after `now` at which the wall clock in `zone` reaches `clock`."""
    today = now.astimezone(zone).date()
    # Two days ahead covers a day that a zone skipped outright (Pacific/Apia, 2011-12-30).
    for offset in range(4):
        later = [i for i in instants(today + dt.timedelta(days=offset), clock, zone) if i > now]
        if later:
            return later[0]
    raise ValueError(f"{zone.key} never reads {clock} after {now}")


def instants(day: dt.date, clock: dt.time, zone: ZoneInfo) -> list[dt.datetime]:
    """The UTC instants at which the wall clock reads `clock` on `day`.

    One normally; two in a repeated hour; in a skipped hour, the instant the clock jumps past it.
    """
    naive = dt.datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first > second:  # a gap: fold=0 reads it with the offset before the jump
        return [gap_end(second, first, zone)]
    return sorted({first, second})


def gap_end(before: dt.datetime, after: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant the offset changes between `before` (old offset) and `after` (new offset)."""
    old = before.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    # Transitions fall on whole seconds; bisect to the first second with the new offset.
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == old:
            low = middle
        else:
            high = middle
    return dt.datetime.fromtimestamp(high, UTC)


def openings(
    now: dt.datetime, zones: Iterable[str], start: dt.time, end: dt.time
) -> dict[str, dt.datetime]:
    """Each zone's next opening of the window (now where it is open)."""
    return {zone: next_opening(now, zone, start, end) for zone in zones}
