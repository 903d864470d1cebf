"""Start campaigns whose time has come, close what can no longer be sent, finish what is done."""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from services.scheduler import metrics
from shared.db.queries.messages import close_pending, finish_campaigns, materialise
from shared.db.queries.scheduling import closable, expire_idle, lock_next_due_to_start, mark_running

log = logging.getLogger(__name__)


def start_due(engine: Engine) -> list[int]:
    """Materialise and start every scheduled campaign whose starts_at has passed.

    Recipients are fixed here, at the start: clients imported later do not join.
    """
    started = []
    while True:
        with engine.begin() as conn:
            campaign_id = lock_next_due_to_start(conn)
            if campaign_id is None:
                return started
            began = time.monotonic()
            count = materialise(conn, campaign_id)
            mark_running(conn, campaign_id)
        metrics.MATERIALISED.inc(count)
        metrics.MATERIALISE_SECONDS.observe(time.monotonic() - began)
        log.info("campaign started", extra={"campaign_id": campaign_id, "recipients": count})
        started.append(campaign_id)


def close_unsendable(engine: Engine) -> None:
    """Expire pending messages past their campaign's end; cancel those of cancelled campaigns."""
    with engine.begin() as conn:
        found = closable(conn)
        expired = close_pending(conn, found["expired"], "expired")
        cancelled = close_pending(conn, found["cancelled"], "cancelled")
        expire_idle(conn)
    metrics.EXPIRED.inc(expired)
    metrics.CANCELLED.inc(cancelled)


def finish_done(engine: Engine) -> None:
    with engine.begin() as conn:
        for campaign_id, status in finish_campaigns(conn):
            log.info("campaign finished", extra={"campaign_id": campaign_id, "status": status})
