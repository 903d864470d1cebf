"""Composition root: campaign-event consumer thread, tick loop (start, windows, release,
finish), the notification releaser's thread (the priority lane) and the retention job's.

Campaign state lives in PostgreSQL; events only wake the loop early, so a lost or
duplicated event changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from pika.adapters.blocking_connection import BlockingConnection
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.scheduler.notifications import NotificationReleaser
from services.scheduler.retention import RetentionJob
from services.scheduler.ticker import HELD_ROUTING_KEY, Ticker
from shared.channels.plugins import load_channel_modules
from shared.config import Settings, service_settings
from shared.db.engine import make_engine
from shared.logging import configure, secrets_of
from shared.messaging.consumer import Consumer, Delivery, Session
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.publishing import keep_publishing
from shared.messaging.topology import CAMPAIGN_EVENTS_QUEUE
from shared.metrics import serve
from shared.signals import stop_on_signals

log = logging.getLogger("services.scheduler")


class Scheduler:
    def __init__(self, settings: Settings, engine: Engine, stopping: threading.Event) -> None:
        self.settings = settings
        self.engine = engine
        self.ticker = Ticker.from_settings(settings)
        self.wake = threading.Event()
        self.stopping = stopping

    def on_event(self, delivery: Delivery, session: Session) -> None:
        session.ack(delivery)
        if delivery.routing_key != HELD_ROUTING_KEY:  # our own snapshot changes nothing
            self.wake.set()

    def run(self) -> None:
        keep_publishing(
            self.settings.amqp_url,
            "scheduler",
            self.settings.retry_delays_ms,
            self.stopping,
            self._loop,
            also_retry=(SQLAlchemyError,),
        )

    def _loop(self, connection: BlockingConnection, publisher: ConfirmingPublisher) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            released = self.ticker.tick(self.engine, publisher)
            if released >= self.settings.release_per_tick:
                continue
            deadline = time.monotonic() + self.settings.tick_interval_s
            # Short slices keep heartbeats flowing and let an event cut the wait short.
            while time.monotonic() < deadline and not self.wake.is_set():
                connection.process_data_events(time_limit=0.02)


def main() -> None:
    stopper = stop_on_signals()
    settings = service_settings("scheduler")
    load_channel_modules(settings.channel_modules)
    configure("scheduler", settings.log_level, secrets_of(settings))
    serve(settings.metrics_port)
    engine = make_engine(settings.database_url)
    scheduler = Scheduler(settings, engine, stopper.stopping)
    events = Consumer(
        settings.amqp_url,
        "scheduler-events",
        CAMPAIGN_EVENTS_QUEUE,
        prefetch=50,
        retry_delays_ms=settings.retry_delays_ms,
        handler=scheduler.on_event,
    )
    stopper.on_stop(events.stop)
    threading.Thread(target=events.run, name="campaign-events", daemon=True).start()
    NotificationReleaser(settings, engine, stopper.stopping).start()
    RetentionJob(settings, engine, stopper.stopping).start()
    log.info("scheduler started")
    scheduler.run()
    log.info("scheduler stopped")


if __name__ == "__main__":
    main()
