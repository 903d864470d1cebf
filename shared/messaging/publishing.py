"""keep_publishing(): run publishing work on a connection for ever, reconnecting with backoff.

The scheduler and the outbox relay both publish from a loop of their own; this is the one
place that survives broker restarts (and, through `also_retry`, database ones) for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pika.adapters.blocking_connection import BlockingConnection

from shared.messaging.connection import CONNECTION_ERRORS, Backoff, BrokerNodes
from shared.messaging.publisher import ConfirmingPublisher, PublishFailed
from shared.messaging.topology import declare_all

log = logging.getLogger(__name__)

BROKER_ERRORS = CONNECTION_ERRORS + (PublishFailed,)

Work = Callable[[BlockingConnection, ConfirmingPublisher], None]


def keep_publishing(
    amqp_url: str,
    name: str,
    retry_delays_ms: tuple[int, ...],
    stopping: threading.Event,
    work: Work,
    also_retry: tuple[type[BaseException], ...] = (),
    on_broker_lost: Callable[[], None] | None = None,
) -> None:
    """Call work(connection, publisher) until `stopping` is set; reconnect after failures."""
    backoff = Backoff()
    nodes = BrokerNodes(amqp_url)
    while not stopping.is_set():
        connection = None
        try:
            connection = nodes.connect(name)
            channel = connection.channel()
            declare_all(channel, retry_delays_ms)
            publisher = ConfirmingPublisher(channel)
            backoff.reset()
            work(connection, publisher)
        except BROKER_ERRORS + also_retry as exc:
            is_broker = isinstance(exc, BROKER_ERRORS)
            if is_broker and on_broker_lost:
                on_broker_lost()
            delay = backoff.next_delay()
            what = "broker" if is_broker else "database"
            log.warning("%s: %s unavailable (%s); retrying in %.1fs", name, what, exc, delay)
            stopping.wait(delay)
        finally:
            if connection is not None and connection.is_open:
                try:
                    connection.close()
                except CONNECTION_ERRORS:
                    pass
