"""Composition root: the outcome consumer feeding the aggregator, metrics, the daily summary."""

from __future__ import annotations

import logging
import threading

from prometheus_client import REGISTRY

from services.stats.aggregator import Aggregator
from services.stats.collector import CampaignCollector
from services.stats.summary import run_daily_summaries
from shared.channels.plugins import load_channel_modules
from shared.config import service_settings
from shared.db.engine import make_engine
from shared.domain.gateway_delivery import DeliveryShares
from shared.logging import configure, secrets_of
from shared.messaging.consumer import Consumer
from shared.messaging.topology import OUTCOMES_QUEUE
from shared.metrics import serve
from shared.signals import stop_on_signals

log = logging.getLogger("services.stats")


def main() -> None:
    stopper = stop_on_signals()
    settings = service_settings("stats")
    load_channel_modules(settings.channel_modules)
    configure("stats", settings.log_level, secrets_of(settings))
    engine = make_engine(settings.database_url)
    share = settings.gateway_min_delivery_share
    aggregator = Aggregator(
        engine,
        settings.stats_flush_max,
        settings.stats_flush_s,
        settings.early_receipt_days,
        DeliveryShares(share) if share > 0 else None,
    )
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
    stopper.on_stop(consumer.stop)
    REGISTRY.register(CampaignCollector(engine, alert_share=settings.delivery_rate_alert_share))
    serve(settings.metrics_port)
    threading.Thread(
        target=run_daily_summaries,
        args=(engine, settings, stopper.stopping),
        name="summary",
        daemon=True,
    ).start()
    log.info("stats started")
    consumer.run()
    log.info("stats stopped")


if __name__ == "__main__":
    main()
