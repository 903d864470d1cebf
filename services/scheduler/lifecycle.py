"""Start campaigns whose time has come, close what can no longer be sent, finish what is done."""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, func, select

from services.scheduler import metrics
from services.scheduler.windows import next_check, window_of, zone_openings
from shared.db.queries import partitions, statuses
from shared.db.queries.recipients import record_left_out
from shared.db.queries.scheduling import (
    any_due_to_start,
    campaign_window,
    closable,
    lock_next_due_to_start,
)
from shared.db.queries.windows import save_window
from shared.domain.statuses import MessageStatus

log = logging.getLogger(__name__)


def start_due(engine: Engine, partition_ids: int) -> list[int]:
    """Materialise and start every scheduled campaign whose starts_at has passed.

    Recipients are fixed here, at the start: clients imported later do not join. Each message
    waits for its zone's send window from the start. The ids it will take get their message
    partitions first, in a transaction of their own (`partition_ids` ids each).
    """
    started: list[int] = []
    while True:
        with engine.begin() as conn:
            if not any_due_to_start(conn):
                return started
            ahead = partitions.client_count(conn) + partition_ids
            made = partitions.ensure_ahead(conn, ahead, partition_ids)
        if made:
            metrics.PARTITIONS_MADE.inc(len(made))
            log.info("message partitions made", extra={"partitions": made})
        with engine.begin() as conn:
            campaign_id = lock_next_due_to_start(conn)
            if campaign_id is None:
                return started
            began = time.monotonic()
            window_start, window_end, ends_at = campaign_window(conn, campaign_id)
            window = window_of(window_start, window_end)
            now = conn.execute(select(func.now())).scalar_one()
            openings, fallback = zone_openings(now, window)
            count = statuses.materialise(conn, campaign_id, openings, fallback)
            record_left_out(conn, campaign_id)
            save_window(conn, campaign_id, window, ends_at, next_check(now, window))
            statuses.start(conn, campaign_id)
        metrics.MATERIALISED.inc(count)
        metrics.MATERIALISE_SECONDS.observe(time.monotonic() - began)
        log.info("campaign started", extra={"campaign_id": campaign_id, "recipients": count})
        started.append(campaign_id)


def close_unsendable(engine: Engine) -> None:
    """Expire pending messages past their campaign's end; cancel those of cancelled campaigns."""
    with engine.begin() as conn:
        found = closable(conn)
        expired = statuses.close_pending(conn, found["expired"], MessageStatus.EXPIRED)
        cancelled = statuses.close_pending(conn, found["cancelled"], MessageStatus.CANCELLED)
        statuses.expire_idle(conn)
    metrics.EXPIRED.inc(expired)
    metrics.CANCELLED.inc(cancelled)


def finish_done(engine: Engine) -> None:
    """Complete (or expire) running campaigns with nothing pending or queued.

    The scheduler alone decides completion: stats only records outcomes, and the next tick
    sees the counters they moved.
    """
    with engine.begin() as conn:
        for campaign_id, status in statuses.finish(conn):
            log.info("campaign finished", extra={"campaign_id": campaign_id, "status": status})
