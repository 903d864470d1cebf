"""record(conn, ...) inside the caller's transaction; OutboxRelay publishes what was recorded.

Writing the event in the same transaction as the state change means an accepted change is
never lost while RabbitMQ is down: the relay publishes it, with confirms, when it can.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from pika.adapters.blocking_connection import BlockingConnection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from shared.config import Settings
from shared.db.models import Outbox
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.publishing import keep_publishing

log = logging.getLogger(__name__)


def record(
    conn: Connection,
    exchange: str,
    routing_key: str,
    payload: dict[str, Any],
    headers: dict[str, Any] | None = None,
) -> None:
    """Write one event to the outbox as part of the caller's transaction."""
    conn.execute(
        insert(Outbox).values(
            exchange=exchange, routing_key=routing_key, payload=payload, headers=headers or {}
        )
    )


class OutboxRelay:
    """A daemon thread that publishes unpublished outbox rows, with confirms, oldest first.

    Rows are claimed with SKIP LOCKED, so several relays may run; a row is marked published
    only after the broker confirmed it, so a crash in between republishes (at least once).
    """

    def __init__(self, settings: Settings, engine: Engine, batch: int = 500) -> None:
        self.settings = settings
        self.engine = engine
        self.batch = batch
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._is_broker_ready = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def is_broker_ready(self) -> bool:
        return self._is_broker_ready

    def _run(self) -> None:
        keep_publishing(
            self.settings.amqp_url,
            "outbox-relay",
            self.settings.retry_delays_ms,
            self._stopping,
            self._relay,
            also_retry=(SQLAlchemyError,),
            on_broker_lost=self._broker_lost,
        )
        self._is_broker_ready = False

    def _relay(self, connection: BlockingConnection, publisher: ConfirmingPublisher) -> None:
        self._is_broker_ready = True
        while not self._stopping.is_set():
            if relay_once(self.engine, publisher, self.batch) < self.batch:
                connection.sleep(self.settings.outbox_poll_s)

    def _broker_lost(self) -> None:
        self._is_broker_ready = False


def relay_once(engine: Engine, publisher: ConfirmingPublisher, batch: int) -> int:
    """Publish up to `batch` unpublished events and mark them; returns how many."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(Outbox.id, Outbox.exchange, Outbox.routing_key, Outbox.payload, Outbox.headers)
            .where(Outbox.published_at.is_(None))
            .order_by(Outbox.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            headers = dict(row.headers or {})
            publisher.publish(
                row.exchange,
                row.routing_key,
                json.dumps(row.payload).encode(),
                headers=headers,
                correlation_id=headers.get("x-correlation-id"),
            )
        if rows:
            conn.execute(
                update(Outbox)
                .where(Outbox.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
    for row in rows:
        log.info(
            "event published",
            extra={
                "routing_key": row.routing_key,
                "correlation_id": (row.headers or {}).get("x-correlation-id"),
            },
        )
    return len(rows)


BACKLOG = text(
    """
    SELECT count(*) AS unpublished,
           coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age_s
      FROM outbox WHERE published_at IS NULL
    """
)


class OutboxBacklog(Collector):
    """Unpublished outbox events and the age of the oldest, read from the table when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering calls describe(), not collect(): no query before the first scrape.
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(BACKLOG).one()
        except SQLAlchemyError as exc:
            # No sample rather than a wrong one; the readiness probe reports the database.
            log.warning("outbox backlog unavailable: %s", exc)
            return
        backlog, oldest = self._families()
        backlog.add_metric([], float(row.unpublished))
        oldest.add_metric([], float(row.age_s))
        yield backlog
        yield oldest

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "herald_api_outbox_backlog",
                "Outbox events written and not yet published to RabbitMQ.",
            ),
            GaugeMetricFamily(
                "herald_api_outbox_oldest_age_seconds",
                "Age of the oldest unpublished outbox event (0 when none wait).",
            ),
        )
