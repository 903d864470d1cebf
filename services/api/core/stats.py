"""Read models from campaign_progress: counts by status, percent done, recent rate, ETA.

The rate is what was sent over the last RATE_WINDOW_S seconds (message.sent_at, one index
probe per campaign), so it follows a campaign that speeds up, slows down or pauses.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import Text

from shared.db.queries import campaigns as queries
from shared.db.queries.campaigns import PROGRESS_COUNTS
from shared.db.queries.notifications import notification_counts
from shared.db.queries.stats import recent_sent
from shared.domain import channels
from shared.domain.delivery import delivery_figures
from shared.domain.statuses import (
    ACCEPTED_STATUSES,
    FINAL_MESSAGE_STATUSES,
    OPEN_MESSAGE_STATUSES,
    CampaignStatus,
    NotificationStatus,
)
from shared.errors import NotFound

log = logging.getLogger(__name__)

RATE_WINDOW_S = 10

# What each gateway took of one campaign (sent, delivered or undelivered) and the segments
# it billed, from its rows and from the sums kept of rows retention dropped; NULL gateway
# rows are messages from before the gateway was recorded ('' in the archive).
BY_GATEWAY = text(
    """
    SELECT gateway, sum(sent)::bigint AS sent, sum(delivered)::bigint AS delivered,
           sum(undelivered)::bigint AS undelivered, sum(segments)::bigint AS segments
      FROM (
        SELECT gateway,
               count(*) AS sent,
               count(*) FILTER (WHERE status = 'delivered') AS delivered,
               count(*) FILTER (WHERE status = 'undelivered') AS undelivered,
               coalesce(sum(segments), 0) AS segments
          FROM message
         WHERE campaign_id = :campaign_id AND status = ANY(:statuses)
         GROUP BY gateway
        UNION ALL
        SELECT nullif(gateway, ''), sent, delivered, undelivered, segments
          FROM campaign_gateway_archive
         WHERE campaign_id = :campaign_id
      ) g
     GROUP BY gateway
     ORDER BY gateway
    """
).bindparams(bindparam("statuses", type_=ARRAY(Text)))


def by_gateway(conn: Connection, campaign_id: int) -> dict[str, Any]:
    """segments_sent over every message the gateways took, and by_gateway per named one."""
    rows = conn.execute(
        BY_GATEWAY,
        {"campaign_id": campaign_id, "statuses": sorted(str(s) for s in ACCEPTED_STATUSES)},
    ).mappings()
    table: dict[str, dict[str, int]] = {}
    segments = 0
    for row in rows:
        segments += row["segments"]
        if row["gateway"] is not None:
            table[row["gateway"]] = {
                name: row[name] for name in ("sent", "delivered", "undelivered", "segments")
            }
    return {"segments_sent": segments, "by_gateway": table}


def figures(progress: RowMapping, recent: int) -> dict[str, Any]:
    """Counts plus delivery figures, done, percent_done, rate_per_s and eta_s.

    `recent`: sent in the window. `sent` counts every message the gateway took, delivered
    and undelivered included; `awaiting_receipt` those still stored as sent.
    """
    counts = {name: progress[name] for name in PROGRESS_COUNTS}
    summary = progress_summary(counts, progress["status"])
    rate = recent / RATE_WINDOW_S
    remaining = sum(progress[str(status)] for status in OPEN_MESSAGE_STATUSES)
    eta = 0.0 if remaining == 0 else (round(remaining / rate, 1) if rate > 0 else None)
    return {
        "campaign_id": progress["campaign_id"],
        "status": progress["status"],
        **summary,
        "rate_per_s": round(rate, 3),
        "eta_s": eta,
        "left_out": {
            "no_address": progress["left_out_no_address"],
            "opted_out": progress["left_out_opted_out"],
        },
    }


def progress_summary(counts: dict[str, int], status: str) -> dict[str, Any]:
    """Counts by status with the delivery figures, done and percent_done."""
    total = counts["total"]
    done = sum(counts[str(final)] for final in FINAL_MESSAGE_STATUSES)
    if total:
        percent = round(min(done / total, 1.0) * 100, 2)
    else:
        percent = 100.0 if status == CampaignStatus.COMPLETED else 0.0
    return {**counts, **delivery_figures(counts), "done": done, "percent_done": percent}


def recent_counts(conn: Connection, rows: list[RowMapping]) -> dict[int, int]:
    """Sends in the rate window, asked only of campaigns whose last send is that recent."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=RATE_WINDOW_S + 1)
    active = [
        row["campaign_id"]
        for row in rows
        if row["last_sent_at"] is not None and row["last_sent_at"] > since
    ]
    return recent_sent(conn, active, RATE_WINDOW_S)


def campaign_stats(engine: Engine, campaign_id: int) -> dict[str, Any]:
    """Progress of one campaign; NotFound when it does not exist."""
    with engine.connect() as conn:
        progress = queries.campaign_progress(conn, campaign_id)
        if progress is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        recent = recent_counts(conn, [progress])
        gateways = by_gateway(conn, campaign_id)
    return {**figures(progress, recent.get(campaign_id, 0)), **gateways}


def all_stats(engine: Engine) -> dict[str, Any]:
    """Every campaign's progress and the counts summed; notifications by channel, apart."""
    with engine.connect() as conn:
        rows = queries.all_progress(conn)
        recent = recent_counts(conn, rows)
        counts = notification_counts(conn)
    campaigns = [figures(row, recent.get(row["campaign_id"], 0)) for row in rows]
    # Summed as stored, then sent and the rate derived once from the sums.
    stored = {name: sum(row[name] for row in rows) for name in PROGRESS_COUNTS}
    totals = {**stored, **delivery_figures(stored)}
    return {"campaigns": campaigns, "totals": totals, "notifications": by_channel(counts)}


def by_channel(counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Every status of every channel, zeros included, and the sums over channels.

    `sent` counts what the gateway took (see shared/domain/delivery.py), with the rate.
    """
    names = dict.fromkeys([*channels.names(), *sorted(counts)])
    stored = {
        channel: {str(s): counts.get(channel, {}).get(str(s), 0) for s in NotificationStatus}
        for channel in names
    }
    summed = {str(s): sum(row[str(s)] for row in stored.values()) for s in NotificationStatus}
    table = {channel: {**row, **delivery_figures(row)} for channel, row in stored.items()}
    return {"by_channel": table, "total": {**summed, **delivery_figures(summed)}}


def is_database_ready(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("database not ready: %s", exc.__class__.__name__)
        return False
    return True
