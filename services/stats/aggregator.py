"""Drain outcome batches; apply them all in one transaction of bulk statements; ack after commit.

Applying is idempotent (only queued messages take an outcome), so a redelivery after a
crash between commit and ack changes nothing.
"""

from __future__ import annotations

import collections
import logging
import time

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.db.queries.statuses import apply_notification_outcomes, apply_outcomes
from shared.domain.deliveries import CAMPAIGN, NOTIFICATION
from shared.messaging.consumer import Delivery, Session
from shared.messaging.envelopes import Outcome, OutcomeBatch

log = logging.getLogger(__name__)

OUTCOMES = Counter(
    "herald_stats_outcomes_received_total", "Delivery outcomes received.", ["status", "kind"]
)
APPLIED = Counter(
    "herald_stats_outcomes_applied_total",
    "Outcomes that moved a message or a notification to a final status.",
    ["kind"],
)
FLUSH_SECONDS = Histogram(
    "herald_stats_flush_duration_seconds",
    "Time to apply one drained set of outcome batches.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Aggregator:
    """Buffers deliveries of outcome batches; flush() applies and acks them together."""

    def __init__(self, engine: Engine, flush_max: int, flush_s: float) -> None:
        self.engine = engine
        self.flush_max = flush_max
        self.flush_s = flush_s
        self.pending: list[tuple[Delivery, OutcomeBatch]] = []
        self.oldest = 0.0
        self.retry_at = 0.0

    def on_delivery(self, delivery: Delivery, session: Session) -> None:
        batch = OutcomeBatch.decode(delivery.body)
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append((delivery, batch))
        if len(self.pending) >= self.flush_max:
            self.flush(session)

    def on_tick(self, session: Session) -> None:
        if self.pending and time.monotonic() - self.oldest >= self.flush_s:
            self.flush(session)

    def on_session_lost(self) -> None:
        # Unacked deliveries come back on the next connection.
        self.pending.clear()

    def flush(self, session: Session) -> None:
        if time.monotonic() < self.retry_at:
            return
        by_kind: dict[str, list[Outcome]] = {}
        for _, batch in self.pending:
            by_kind.setdefault(batch.kind, []).extend(batch.outcomes)
        messages = by_kind.get(CAMPAIGN, [])
        notifications = by_kind.get(NOTIFICATION, [])
        try:
            with FLUSH_SECONDS.time(), self.engine.begin() as conn:
                applied = {
                    CAMPAIGN: apply_outcomes(conn, messages),
                    NOTIFICATION: apply_notification_outcomes(conn, notifications),
                }
        except SQLAlchemyError as exc:
            # Keep the deliveries unacked and try again shortly: nothing is lost.
            waiting = len(messages) + len(notifications)
            log.warning("database unavailable, %d outcomes wait: %s", waiting, exc)
            self.retry_at = time.monotonic() + 2.0
            return
        session.channel.basic_ack(self.pending[-1][0].delivery_tag, multiple=True)
        self.pending.clear()
        for kind, outcomes in by_kind.items():
            for status, n in collections.Counter(o.status for o in outcomes).items():
                OUTCOMES.labels(status, kind).inc(n)
            APPLIED.labels(kind).inc(applied.get(kind, 0))
