"""Composition root: the outcome consumer feeding the aggregator, and the metrics server."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from services.stats.aggregator import Aggregator
from shared.config import Settings
from shared.db.engine import make_engine
from shared.logging import configure
from shared.messaging.consumer import Consumer
from shared.messaging.topology import OUTCOMES_QUEUE
from shared.metrics import serve

log = logging.getLogger("services.stats")


def main() -> None:
    settings = Settings.from_env()
    configure("stats", settings.log_level)
    serve(settings.metrics_port)
    engine = make_engine(settings.database_url)
    aggregator = Aggregator(engine, settings.stats_flush_max, settings.stats_flush_s)
    consumer = Consumer(
        settings.amqp_url,
        "stats",
        OUTCOMES_QUEUE,
        prefetch=settings.stats_flush_max,
        retry_delays_ms=settings.retry_delays_ms,
        handler=aggregator.on_delivery,
        on_tick=aggregator.on_tick,
        tick_s=min(0.05, settings.stats_flush_s),
        on_session_lost=aggregator.on_session_lost,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        consumer.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("stats started")
    consumer.run()
    log.info("stats stopped")


if __name__ == "__main__":
    main()
