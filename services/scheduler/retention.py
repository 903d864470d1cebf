"""The retention job: drops message partitions whose campaigns all finished long enough ago.

Its own thread, so archiving a large partition never delays a tick. Each partition goes in a
transaction of its own; one that cannot be locked at once waits for the next run.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from services.scheduler import metrics
from shared.config import Settings
from shared.db.queries import partitions
from shared.db.queries.partitions import Dropped

log = logging.getLogger(__name__)


def run_retention(engine: Engine, days: int) -> list[Dropped]:
    """One run: drop what `days` of retention allows (none when 0), then refresh the gauges."""
    began = time.monotonic()
    dropped: list[Dropped] = []
    if days > 0:
        with engine.begin() as conn:
            names = [p.name for p in partitions.expired_partitions(conn, days)]
        for name in names:
            try:
                with engine.begin() as conn:
                    done = partitions.drop_if_expired(conn, name, days)
            except OperationalError as exc:  # lock_timeout: busy now, next run
                log.warning("partition not dropped", extra={"partition": name, "error": str(exc)})
                continue
            if done is not None:
                dropped.append(done)
                metrics.RETENTION_DROPPED_PARTITIONS.inc()
                metrics.RETENTION_DROPPED_MESSAGES.inc(done.rows)
                log.info(
                    "message partition dropped",
                    extra={"partition": done.name, "rows": done.rows, "campaigns": done.campaigns},
                )
    with engine.connect() as conn:
        found = partitions.partitions(conn)
    metrics.PARTITIONS.set(len(found))
    metrics.MESSAGE_TABLE_BYTES.set(partitions.sizes(found)[1])
    metrics.RETENTION_SECONDS.observe(time.monotonic() - began)
    metrics.RETENTION_LAST_SUCCESS.set_to_current_time()
    return dropped


class RetentionJob:
    """Runs retention at start and every `retention_interval_s` until stopped."""

    def __init__(self, settings: Settings, engine: Engine, stopping: threading.Event) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = stopping

    def start(self) -> None:
        threading.Thread(target=self.run, name="retention", daemon=True).start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                run_retention(self.engine, self.settings.message_retention_days)
            except SQLAlchemyError:
                log.exception("retention run failed; trying again next interval")
            self.stopping.wait(self.settings.retention_interval_s)
