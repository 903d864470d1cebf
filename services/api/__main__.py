"""Composition root: settings -> engine -> create_app -> waitress; the outbox relay thread.

Run with `python -m services.api`. SIGTERM and SIGINT stop the server and the relay cleanly.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import waitress
from sqlalchemy import Engine

from services.api.app import create_app
from shared import outbox
from shared.config import Settings
from shared.db.engine import make_engine
from shared.logging import configure, secrets_of

log = logging.getLogger("services.api")


def start_relay(settings: Settings, engine: Engine) -> Any | None:
    """Start the outbox relay thread when this build has one; None otherwise."""
    relay_class = getattr(outbox, "OutboxRelay", None)
    if relay_class is None:
        log.warning("no OutboxRelay in shared.outbox: events stay in the outbox table")
        return None
    relay = relay_class(settings, engine)
    relay.start()
    return relay


def exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds waitress's loop, so the finally block below runs.
    raise SystemExit(0)


def main() -> None:
    settings = Settings.from_env()
    configure("api", settings.log_level, secrets_of(settings))
    engine = make_engine(settings.database_url, pool_size=10)
    relay = start_relay(settings, engine)
    broker_ready: Callable[[], bool] | None = relay.is_broker_ready if relay else None
    app = create_app(settings, engine, broker_ready)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGINT, exit_on_signal)
    log.info("api listening on %s:%s", settings.api_host, settings.api_port)
    try:
        waitress.serve(app, host=settings.api_host, port=settings.api_port, threads=16)
    finally:
        if relay is not None:
            relay.stop()
        engine.dispose()
        log.info("api stopped")


if __name__ == "__main__":
    main()
