"""message_count(url, queue): the messages waiting in a queue, asked on a connection."""

from __future__ import annotations

from shared.messaging.connection import connect


def message_count(amqp_url: str, queue: str, name: str) -> int:
    """Messages ready in `queue`; raises one of CONNECTION_ERRORS when the broker cannot say."""
    connection = connect(amqp_url, name)
    try:
        declared = connection.channel().queue_declare(queue, passive=True)
        return int(declared.method.message_count)
    finally:
        if connection.is_open:
            connection.close()
