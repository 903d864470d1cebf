"""connect(url): a BlockingConnection with heartbeats; Backoff: capped, jittered delays.

HERALD_AMQP_URL may list several nodes of a cluster: `connect` tries them in turn, and a
`BrokerNodes` reconnects from the node after the one it lost, so a dead node is tried last.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pika
from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import AMQPChannelError, AMQPConnectionError, ConnectionClosed

from shared.config import split_amqp_urls

log = logging.getLogger(__name__)

# RabbitMQ's management UI and Prometheus endpoint listen here on every node.
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692

# Errors after which the right move is to drop the connection and make a new one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    AMQPConnectionError,
    ConnectionClosed,
    AMQPChannelError,
    ConnectionError,
    OSError,
)


def try_order(count: int, start: int) -> list[int]:
    """Indexes of `count` nodes in the order to try them, beginning at `start`."""
    return [(start + offset) % count for offset in range(count)]


def node_name(amqp_url: str) -> str:
    """host:port of a node's URL, for log lines: never its credentials."""
    parts = urlsplit(amqp_url)
    return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


def broker_hosts(amqp_url: str) -> list[str]:
    """The host of every node HERALD_AMQP_URL lists, in its order."""
    return [urlsplit(url).hostname or "127.0.0.1" for url in split_amqp_urls(amqp_url)]


class BrokerNodes:
    """The nodes of one HERALD_AMQP_URL for one long-lived connection, kept between reconnects."""

    def __init__(self, amqp_url: str) -> None:
        self.urls = split_amqp_urls(amqp_url)
        self._start = 0

    def connect(self, name: str) -> BlockingConnection:
        """Connect to the first node that answers; the next call begins after that one.

        Raises the last node's error when none answers.
        """
        error: BaseException | None = None
        for index in try_order(len(self.urls), self._start):
            try:
                connection = open_connection(self.urls[index], name)
            except CONNECTION_ERRORS as exc:
                error = exc
                if len(self.urls) > 1:
                    node = node_name(self.urls[index])
                    log.warning("%s: node %s unavailable (%s)", name, node, type(exc).__name__)
                continue
            # A later call means this connection was lost: start with the next node then.
            self._start = (index + 1) % len(self.urls)
            if len(self.urls) > 1:
                log.info("%s: connected to node %s", name, node_name(self.urls[index]))
            return connection
        assert error is not None
        raise error


def connect(amqp_url: str, name: str) -> BlockingConnection:
    """Connect to the first node of HERALD_AMQP_URL that answers, in the order listed."""
    return BrokerNodes(amqp_url).connect(name)


def open_connection(amqp_url: str, name: str) -> BlockingConnection:
    """Open a connection that notices a dead peer within a minute and never hangs when blocked."""
    params = pika.URLParameters(amqp_url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.client_properties = {"connection_name": name}
    return BlockingConnection(params)


@dataclass
class Backoff:
    """1, 2, 4 … capped seconds with jitter; reset after a success."""

    cap_s: float = 30.0
    attempt: int = field(default=0)

    def next_delay(self) -> float:
        delay = min(self.cap_s, 2.0 ** min(self.attempt, 10))
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0
