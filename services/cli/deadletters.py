"""`herald dead-letters count|replay`: inspect and move back what the pipeline parked.

Replay takes messages from the parking queue and republishes each to where it came from:
delivery batches to the deliveries exchange with their routing key (the channel), anything
the broker dead-lettered to the exchange recorded in its x-death header. Each is published
with confirms before it is acked in the parking queue, so a crash never loses one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pika.exceptions import ChannelClosedByBroker

from services.cli.client import CliError
from shared.messaging.connection import CONNECTION_ERRORS, connect
from shared.messaging.publisher import ConfirmingPublisher, PublishFailed
from shared.messaging.topology import DEAD_QUEUE, DELIVERIES_EXCHANGE

# Headers that describe the previous death; a replayed message starts afresh.
DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count", "x-herald-error")
REPLAY_HEADER = "x-herald-replays"


@dataclass(slots=True)
class ReplayReport:
    moved: int = 0
    routes: Counter[str] = field(default_factory=Counter)


def origin(routing_key: str, headers: Mapping[str, Any]) -> tuple[str, str]:
    """(exchange, routing key) a dead letter came from.

    The sender parks batches without x-death, under their channel as routing key; the broker
    records the exchange it dead-lettered from in the newest x-death entry.
    """
    deaths = headers.get("x-death") or []
    exchange = deaths[0].get("exchange") if deaths and isinstance(deaths[0], Mapping) else None
    return (exchange or DELIVERIES_EXCHANGE), routing_key


def fresh_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in headers.items() if not k.startswith(DEATH_HEADERS)}
    kept[REPLAY_HEADER] = int(headers.get(REPLAY_HEADER) or 0) + 1
    return kept


def count(amqp_url: str) -> int:
    """Messages waiting in the parking queue."""
    connection = open_broker(amqp_url)
    try:
        return waiting(connection.channel())
    finally:
        connection.close()


def replay(amqp_url: str, limit: int | None = None) -> ReplayReport:
    """Move up to `limit` parked messages (all that were waiting when it began) back."""
    report = ReplayReport()
    connection = open_broker(amqp_url)
    try:
        channel = connection.channel()
        # Only what was there at the start: a message that dies again at once must not loop.
        budget = waiting(channel) if limit is None else min(limit, waiting(channel))
        publisher = ConfirmingPublisher(channel)
        while report.moved < budget:
            method, properties, body = channel.basic_get(DEAD_QUEUE, auto_ack=False)
            if method is None:
                break
            headers = dict(properties.headers or {})
            exchange, key = origin(method.routing_key, headers)
            try:
                publisher.publish(
                    exchange, key, body, fresh_headers(headers), properties.correlation_id
                )
            except PublishFailed as exc:
                channel.basic_nack(method.delivery_tag, requeue=True)
                raise CliError(
                    f"error: {exchange}/{key} refused a message, left parked: {exc}"
                ) from exc
            channel.basic_ack(method.delivery_tag)
            report.moved += 1
            report.routes[f"{exchange}/{key}"] += 1
    finally:
        if connection.is_open:
            connection.close()
    return report


def waiting(channel: Any) -> int:
    try:
        return int(channel.queue_declare(DEAD_QUEUE, passive=True).method.message_count)
    except ChannelClosedByBroker as exc:
        raise CliError(
            f"error: no {DEAD_QUEUE} queue on this broker (no service has started)"
        ) from exc


def open_broker(amqp_url: str) -> Any:
    try:
        return connect(amqp_url, "herald-cli")
    except CONNECTION_ERRORS as exc:
        raise CliError(f"error: cannot reach RabbitMQ: {exc.__class__.__name__}") from exc
