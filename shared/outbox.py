"""record(conn, ...) inside the caller's transaction; OutboxRelay publishes what was recorded.

Writing the event in the same transaction as the state change means an accepted change is
never lost while RabbitMQ is down: the relay publishes it, with confirms, when it can.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from shared.db.models import Outbox


def record(
    conn: Connection,
    exchange: str,
    routing_key: str,
    payload: dict[str, Any],
    headers: dict[str, Any] | None = None,
) -> None:
    """Write one event to the outbox as part of the caller's transaction."""
    conn.execute(
        insert(Outbox).values(
            exchange=exchange, routing_key=routing_key, payload=payload, headers=headers or {}
        )
    )
