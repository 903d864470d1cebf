"""connect(url): a BlockingConnection with heartbeats; Backoff: capped, jittered delays."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pika
from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import AMQPChannelError, AMQPConnectionError, ConnectionClosed

# Errors after which the right move is to drop the connection and make a new one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    AMQPConnectionError,
    ConnectionClosed,
    AMQPChannelError,
    ConnectionError,
    OSError,
)


def connect(amqp_url: str, name: str) -> BlockingConnection:
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
