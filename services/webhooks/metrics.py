"""The deliverer's metrics, and the backlog collector that reads the owed rows when scraped."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.db.queries.webhooks import backlog

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "herald_webhook_attempts", "Webhook POSTs by result (delivered, failed).", ["result"]
)
EVENTS_DELIVERED = Counter(
    "herald_webhook_events_delivered", "Events in webhook POSTs answered with a 2xx."
)
LATENCY = Histogram(
    "herald_webhook_latency_seconds",
    "Time from a webhook POST to its answer or error.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DISABLED = Counter("herald_webhooks_disabled", "Subscriptions disabled after failing for 24 hours.")


class WebhookBacklog(Collector):
    """Event rows owed and the age of the oldest, read from the table when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.engine.connect() as conn:
                owed, oldest_s = backlog(conn)
        except SQLAlchemyError as exc:
            log.warning("webhook backlog unavailable: %s", exc)
            return
        owed_family, oldest_family = self._families()
        owed_family.add_metric([], float(owed))
        oldest_family.add_metric([], oldest_s)
        yield owed_family
        yield oldest_family

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("herald_webhook_backlog", "Webhook POSTs owed (event rows)."),
            GaugeMetricFamily(
                "herald_webhook_oldest_owed_seconds", "Age of the oldest webhook POST owed."
            ),
        )
