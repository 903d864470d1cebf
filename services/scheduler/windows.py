"""Keep pending messages' not_before in step with their campaign's send window.

At the start each zone's next opening is written with the messages. Afterwards the scheduler
only acts when something changes: a window closing somewhere (due messages of shut zones wait
for the next opening), a window or end edited, or messages coming back without a not_before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from services.scheduler import metrics
from shared.db.queries import windows as queries
from shared.db.queries.statuses import expire_late
from shared.db.queries.windows import Scope, WindowWork
from shared.domain.windows import next_closing, next_opening
from shared.domain.zones import ZONES, is_zone

log = logging.getLogger(__name__)

Window = tuple[dt.time, dt.time]
FALLBACK_ZONE = "UTC"  # for a zone name this host does not know
NEVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)  # a window open all day never closes


def window_of(start: dt.time | None, end: dt.time | None) -> Window | None:
    return (start, end) if start is not None and end is not None else None


def zone_openings(
    now: dt.datetime, window: Window | None, zones: Iterable[str] | None = None
) -> tuple[dict[str, dt.datetime], dt.datetime | None]:
    """Each zone's next opening, and the fallback for other zones; none without a window."""
    if window is None:
        return {}, None
    openings = {zone: next_opening(now, zone, *window) for zone in zones or ZONES}
    return openings, next_opening(now, FALLBACK_ZONE, *window)


def next_check(now: dt.datetime, window: Window | None) -> dt.datetime | None:
    """The next instant a window closes in any zone: due messages there must wait again."""
    if window is None:
        return None
    closings = (next_closing(now, zone, *window) for zone in ZONES)
    return min((at for at in closings if at is not None), default=NEVER)


def keep_windows(engine: Engine) -> None:
    """Bring every started campaign's not_before up to date with its window and end."""
    with engine.connect() as conn:
        work = queries.window_work(conn)
    for item in work:
        keep_window(engine, item)


def keep_window(engine: Engine, item: WindowWork) -> None:
    with engine.begin() as conn:
        now = queries.lock_campaign(conn, item.campaign_id)
        if now is None:
            return  # another scheduler or an edit holds it: next tick
        expired = 0
        if item.window_changed:
            expired += reschedule(conn, item, Scope.ALL, now)
        elif item.end_changed:
            expired += expire_late(conn, item.campaign_id, item.ends_at)
        if item.window is not None and not item.window_changed:
            if item.check_at is None or item.check_at <= now:
                expired += reschedule(conn, item, Scope.DUE, now)
            if item.has_unscheduled:
                expired += reschedule_unscheduled(conn, item, now)
        if item.window_changed or item.end_changed or is_check_due(item, now):
            check_at = next_check(now, item.window)
            queries.save_window(conn, item.campaign_id, item.window, item.ends_at, check_at)
    metrics.EXPIRED.inc(expired)


def is_check_due(item: WindowWork, now: dt.datetime) -> bool:
    return item.window is not None and (item.check_at is None or item.check_at <= now)


def reschedule(conn: Connection, item: WindowWork, scope: Scope, now: dt.datetime) -> int:
    """Move the scoped messages to their zone's opening; returns how many expired."""
    openings, fallback = zone_openings(now, item.window)
    moved = queries.reschedule(conn, item.campaign_id, scope, openings, fallback)
    expired = expire_late(conn, item.campaign_id, item.ends_at)
    if moved:
        log.info(
            "messages rescheduled to their window",
            extra={"campaign_id": item.campaign_id, "scope": str(scope), "moved": moved},
        )
    return expired


def reschedule_unscheduled(conn: Connection, item: WindowWork, now: dt.datetime) -> int:
    """Give held or retried messages (not_before NULL) their zone's opening."""
    zones = queries.unscheduled_zones(conn, item.campaign_id)
    if not zones:
        return 0
    openings, fallback = zone_openings(now, item.window, [z for z in zones if is_zone(z)])
    queries.reschedule(conn, item.campaign_id, Scope.UNSCHEDULED, openings, fallback)
    return expire_late(conn, item.campaign_id, item.ends_at)
