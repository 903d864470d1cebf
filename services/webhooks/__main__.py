"""Composition root: the webhook deliverer, its metrics server and the backlog collector."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY

from services.webhooks.deliverer import Deliverer
from services.webhooks.metrics import WebhookBacklog
from shared.config import service_settings
from shared.db.engine import make_engine
from shared.logging import configure, secrets_of
from shared.metrics import serve
from shared.signals import stop_on_signals

log = logging.getLogger("services.webhooks")


def main() -> None:
    stopper = stop_on_signals()
    settings = service_settings("webhooks")
    configure("webhooks", settings.log_level, secrets_of(settings))
    if settings.webhook_allow_private:
        log.warning("HERALD_WEBHOOK_ALLOW_PRIVATE is on: webhooks may reach private addresses")
    engine = make_engine(settings.database_url)
    deliverer = Deliverer(
        engine,
        timeout_s=settings.webhook_timeout_s,
        concurrency=settings.webhook_concurrency,
        poll_s=settings.webhook_poll_s,
        allow_private=settings.webhook_allow_private,
        retain_days=settings.webhook_retain_days,
    )
    REGISTRY.register(WebhookBacklog(engine))
    serve(settings.metrics_port)
    log.info("webhooks started")
    deliverer.run(stopper.stopping)
    log.info("webhooks stopped")


if __name__ == "__main__":
    main()
