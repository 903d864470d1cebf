"""Statements the scheduler runs each tick over campaigns: start, find releasable, find closable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

DUE_TO_START = text(
    """
    SELECT id FROM campaign
     WHERE status = 'scheduled' AND starts_at <= now()
     ORDER BY starts_at, id
     LIMIT 1
     FOR UPDATE SKIP LOCKED
    """
)

MARK_RUNNING = text(
    """
    UPDATE campaign SET status = 'running', started_at = now(), updated_at = now()
     WHERE id = :campaign_id
    """
)

RELEASABLE = text(
    """
    SELECT k.id, k.channel, k.text, k.subject, k.ends_at, p.queued, k.correlation_id
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE k.status = 'running' AND p.pending > 0 AND k.ends_at > now()
     ORDER BY k.id
    """
)

# Campaigns whose pending messages can no longer be sent: past their end, or cancelled.
CLOSABLE = text(
    """
    SELECT k.id, CASE WHEN k.status = 'cancelled' THEN 'cancelled' ELSE 'expired' END
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE p.pending > 0
       AND (k.status = 'cancelled'
            OR (k.status IN ('running', 'paused') AND k.ends_at <= now()))
    """
)

# A paused campaign whose end has passed can never resume: it is over.
EXPIRE_IDLE = text(
    """
    UPDATE campaign k SET status = 'expired', finished_at = now(), updated_at = now()
      FROM campaign_progress p
     WHERE p.campaign_id = k.id AND k.status = 'paused' AND k.ends_at <= now()
       AND p.pending = 0 AND p.queued = 0
    """
)


@dataclass(frozen=True, slots=True)
class Releasable:
    id: int
    channel: str
    text: str
    subject: str | None
    ends_at: dt.datetime
    queued: int
    correlation_id: str | None = None


def lock_next_due_to_start(conn: Connection) -> int | None:
    """Lock the next scheduled campaign whose start has come (other schedulers skip it)."""
    return conn.execute(DUE_TO_START).scalar_one_or_none()


def mark_running(conn: Connection, campaign_id: int) -> None:
    conn.execute(MARK_RUNNING, {"campaign_id": campaign_id})


def releasable(conn: Connection) -> list[Releasable]:
    """Running campaigns inside their time range that still have pending messages."""
    return [Releasable(*row) for row in conn.execute(RELEASABLE)]


def closable(conn: Connection) -> dict[str, list[int]]:
    """Campaign ids whose pending messages must close, keyed by the status they close to."""
    found: dict[str, list[int]] = {"expired": [], "cancelled": []}
    for campaign_id, status in conn.execute(CLOSABLE):
        found[status].append(campaign_id)
    return found


def expire_idle(conn: Connection) -> None:
    conn.execute(EXPIRE_IDLE)
