"""Read models from campaign_progress: counts by status, percent done, current rate, ETA."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shared.db.queries import campaigns as queries
from shared.db.queries.campaigns import PROGRESS_COUNTS
from shared.domain.statuses import CampaignStatus
from shared.errors import NotFound

log = logging.getLogger(__name__)

FINAL_COUNTS = ("sent", "failed", "expired", "cancelled")
REMAINING_COUNTS = ("pending", "queued")


def figures(progress: Mapping[str, Any]) -> dict[str, Any]:
    """Counts plus percent_done, rate_per_s and eta_s for one campaign's progress row."""
    total = progress["total"]
    final = sum(progress[name] for name in FINAL_COUNTS)
    if total:
        percent = round(min(final / total, 1.0) * 100, 2)
    else:
        percent = 100.0 if progress["status"] == CampaignStatus.COMPLETED else 0.0
    rate = sent_rate(progress)
    remaining = sum(progress[name] for name in REMAINING_COUNTS)
    eta = 0.0 if remaining == 0 else (round(remaining / rate, 1) if rate > 0 else None)
    return {
        "campaign_id": progress["campaign_id"],
        "status": progress["status"],
        **{name: progress[name] for name in PROGRESS_COUNTS},
        "percent_done": percent,
        "rate_per_s": round(rate, 3),
        "eta_s": eta,
    }


def sent_rate(progress: Mapping[str, Any]) -> float:
    """Messages sent per second between the first and the last send; 0 without a span."""
    first, last = progress["first_sent_at"], progress["last_sent_at"]
    if first is None or last is None or progress["sent"] < 2:
        return 0.0
    span = (last - first).total_seconds()
    return progress["sent"] / span if span > 0 else 0.0


def campaign_stats(engine: Engine, campaign_id: int) -> dict[str, Any]:
    """Progress of one campaign; NotFound when it does not exist."""
    with engine.connect() as conn:
        progress = queries.campaign_progress(conn, campaign_id)
    if progress is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return figures(progress)


def all_stats(engine: Engine) -> dict[str, Any]:
    """Every campaign's progress and the counts summed over all of them."""
    with engine.connect() as conn:
        campaigns = [figures(row) for row in queries.all_progress(conn)]
    totals = {name: sum(c[name] for c in campaigns) for name in PROGRESS_COUNTS}
    return {"campaigns": campaigns, "totals": totals}


def is_database_ready(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("database not ready: %s", exc.__class__.__name__)
        return False
    return True
