"""Deliveries over time: a campaign's sends counted per bucket, for a chart.

The bucket width is chosen so a campaign of any length fits in about MAX_POINTS points; a
caller that polls passes the width it has and `since`, and gets only the newest buckets, so
each poll reads a few seconds of the (campaign_id, sent_at) index, not the whole campaign.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import Engine

from shared.db.queries import campaigns as queries
from shared.db.queries.stats import sent_per_bucket
from shared.errors import NotFound

MAX_POINTS = 60
NICE_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def bucket_width(span_s: float) -> int:
    """The smallest round width (seconds) that covers `span_s` in at most MAX_POINTS buckets."""
    needed = math.ceil(max(span_s, 0.0) / MAX_POINTS)
    return next((width for width in NICE_WIDTHS_S if width >= needed), NICE_WIDTHS_S[-1])


def bucket_start(moment: dt.datetime, width_s: int) -> dt.datetime:
    """The start of the bucket `moment` falls in (buckets are aligned on the Unix epoch)."""
    seconds = math.floor(moment.timestamp() / width_s) * width_s
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def deliveries_over_time(
    engine: Engine,
    campaign_id: int,
    *,
    bucket_s: int | None = None,
    since: dt.datetime | None = None,
) -> dict[str, Any]:
    """{bucket_s, points: [{at, sent}]}: messages the gateway took, per bucket, oldest first."""
    with engine.connect() as conn:
        progress = queries.campaign_progress(conn, campaign_id)
        if progress is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        first, last = progress["first_sent_at"], progress["last_sent_at"]
        if bucket_s is None:
            span = (last - first).total_seconds() if first and last else 0.0
            bucket_s = bucket_width(span)
        start = bucket_start(since, bucket_s) if since is not None else None
        rows = sent_per_bucket(conn, campaign_id, bucket_s, start) if first else []
    return {
        "bucket_s": bucket_s,
        "points": [
            {"at": dt.datetime.fromtimestamp(row.bucket, dt.UTC), "sent": row.sent} for row in rows
        ],
    }
