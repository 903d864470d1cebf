"""Set-based statements that keep pending messages' not_before in step with the send window.

The scheduler computes each zone's next opening in Python (a few hundred zones at most) and
applies them with one UPDATE ... FROM unnest(zones, openings) per campaign, never per message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.engine import Connection
from sqlalchemy.types import Text


class Scope(StrEnum):
    """Which pending messages a rescheduling looks at."""

    ALL = "all"  # the window itself changed
    DUE = "due"  # a window closed: due messages of shut zones wait for the next opening
    UNSCHEDULED = "unscheduled"  # held or retried messages that lost their not_before


UNSCHEDULED = """
    m.campaign_id = :campaign_id AND m.status = 'pending'
    AND coalesce(m.not_before, '-infinity'::timestamptz) = '-infinity'::timestamptz
"""

# Campaigns whose window needs the scheduler now: its window or end changed since their
# messages were scheduled, a window closed somewhere since the last look, or messages came
# back without a not_before. One query per tick; each condition is a row read or an index probe.
WINDOW_WORK = text(
    f"""
    SELECT * FROM (
        SELECT k.id AS campaign_id, k.window_start, k.window_end, k.ends_at,
               s.campaign_id IS NULL
                 OR s.window_start IS DISTINCT FROM k.window_start
                 OR s.window_end IS DISTINCT FROM k.window_end AS window_changed,
               s.ends_at IS DISTINCT FROM k.ends_at AS end_changed,
               s.window_check_at AS check_at,
               k.window_start IS NOT NULL AND EXISTS (
                   SELECT 1 FROM message m WHERE {UNSCHEDULED.replace(":campaign_id", "k.id")}
               ) AS has_unscheduled
          FROM campaign k
          JOIN campaign_progress p ON p.campaign_id = k.id
          LEFT JOIN campaign_schedule s ON s.campaign_id = k.id
         WHERE k.status IN ('running', 'paused') AND p.pending > 0
    ) w
     WHERE window_changed OR end_changed OR has_unscheduled
        OR (window_start IS NOT NULL
            AND (check_at IS NULL OR check_at <= now()))
     ORDER BY campaign_id
    """
)

LOCK_CAMPAIGN = text("SELECT now() FROM campaign WHERE id = :campaign_id FOR UPDATE SKIP LOCKED")

UNSCHEDULED_ZONES = text(
    f"SELECT DISTINCT c.timezone FROM message m JOIN client c ON c.id = m.client_id"
    f" WHERE {UNSCHEDULED}"
)

# Moves not_before to each zone's next opening (fallback for other zones). Those whose
# opening is at or after ends_at are then expired by statuses.expire_late.
RESCHEDULE = text(
    """
    WITH opening AS (
        SELECT * FROM unnest(:zones, :openings) AS o(zone, at)
    ), target AS (
        SELECT m.id, coalesce(o.at, :fallback) AS at
          FROM message m
          LEFT JOIN client c ON c.id = m.client_id
          LEFT JOIN opening o ON o.zone = c.timezone
         WHERE m.campaign_id = :campaign_id AND m.status = 'pending'
           AND coalesce(m.not_before, '-infinity'::timestamptz)
               BETWEEN '-infinity'::timestamptz
                   AND CASE :scope WHEN 'unscheduled' THEN '-infinity'::timestamptz
                                   WHEN 'due' THEN now()
                                   ELSE 'infinity'::timestamptz END
    )
    UPDATE message m
       SET not_before = t.at, updated_at = now()
      FROM target t
     WHERE m.id = t.id AND m.status = 'pending'
       AND m.not_before IS DISTINCT FROM t.at
       AND (:scope <> 'due' OR t.at > now())
    """
).bindparams(
    bindparam("zones", type_=ARRAY(Text)),
    bindparam("openings", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("fallback", type_=TIMESTAMP(timezone=True)),
)

SAVE_WINDOW = text(
    """
    INSERT INTO campaign_schedule (campaign_id, window_start, window_end, ends_at, window_check_at)
    VALUES (:campaign_id, :window_start, :window_end, :ends_at, :check_at)
    ON CONFLICT (campaign_id) DO UPDATE
       SET window_start = excluded.window_start, window_end = excluded.window_end,
           ends_at = excluded.ends_at, window_check_at = excluded.window_check_at
    """
)


@dataclass(frozen=True, slots=True)
class WindowWork:
    campaign_id: int
    window_start: dt.time | None
    window_end: dt.time | None
    ends_at: dt.datetime
    window_changed: bool
    end_changed: bool
    check_at: dt.datetime | None
    has_unscheduled: bool = False

    @property
    def window(self) -> tuple[dt.time, dt.time] | None:
        if self.window_start is None or self.window_end is None:
            return None
        return self.window_start, self.window_end


def window_work(conn: Connection) -> list[WindowWork]:
    """Started campaigns with pending messages whose window needs the scheduler now."""
    return [WindowWork(**row) for row in conn.execute(WINDOW_WORK).mappings()]


def lock_campaign(conn: Connection, campaign_id: int) -> dt.datetime | None:
    """Lock the campaign row and return the transaction's now; None if someone else holds it."""
    return conn.execute(LOCK_CAMPAIGN, {"campaign_id": campaign_id}).scalar_one_or_none()


def unscheduled_zones(conn: Connection, campaign_id: int) -> list[str]:
    """Time zones of the campaign's pending messages that have no not_before."""
    return list(conn.execute(UNSCHEDULED_ZONES, {"campaign_id": campaign_id}).scalars())


def reschedule(
    conn: Connection,
    campaign_id: int,
    scope: Scope,
    openings: Mapping[str, dt.datetime | None],
    fallback: dt.datetime | None,
) -> int:
    """Set not_before of the scoped pending messages to their zone's opening; how many moved.

    An opening of None means "no window": due at once.
    """
    params = {
        "campaign_id": campaign_id,
        "scope": str(scope),
        "zones": list(openings),
        "openings": list(openings.values()),
        "fallback": fallback,
    }
    return conn.execute(RESCHEDULE, params).rowcount


def save_window(
    conn: Connection,
    campaign_id: int,
    window: tuple[dt.time, dt.time] | None,
    ends_at: dt.datetime,
    check_at: dt.datetime | None,
) -> None:
    """Record the window and end the messages now reflect, and when to look again."""
    start, end = window or (None, None)
    conn.execute(
        SAVE_WINDOW,
        {
            "campaign_id": campaign_id,
            "window_start": start,
            "window_end": end,
            "ends_at": ends_at,
            "check_at": check_at,
        },
    )
