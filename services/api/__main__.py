"""Composition root: settings -> engine -> create_app -> waitress; the outbox relay thread.

Run with `python -m services.api`. SIGTERM and SIGINT stop the server and the relay cleanly.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import waitress

from services.api.app import create_app
from shared.channels.plugins import load_channel_modules
from shared.config import service_settings
from shared.db.engine import make_engine
from shared.logging import configure, secrets_of
from shared.outbox import OutboxRelay

log = logging.getLogger("services.api")


def exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds waitress's loop, so the finally block below runs.
    raise SystemExit(0)


def main() -> None:
    settings = service_settings("api", signs_links=True)
    load_channel_modules(settings.channel_modules)
    configure("api", settings.log_level, secrets_of(settings))
    engine = make_engine(settings.database_url, pool_size=10)
    relay = OutboxRelay(settings, engine)
    relay.start()
    app = create_app(settings, engine, relay.is_broker_ready)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGINT, exit_on_signal)
    log.info("api listening on %s:%s", settings.api_host, settings.api_port)
    try:
        waitress.serve(app, host=settings.api_host, port=settings.api_port, threads=16)
    finally:
        relay.stop()
        engine.dispose()
        log.info("api stopped")


if __name__ == "__main__":
    main()
