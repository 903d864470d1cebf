"""Every exchange, queue, binding, TTL tier and dead-letter route as data; declare_all(channel).

Queue names appear only here. Declaring is idempotent, so every service declares all of it
at start and none depends on another having started first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from shared.domain import channels
from shared.domain.deliveries import CAMPAIGN, KINDS, NOTIFICATION

CAMPAIGNS_EXCHANGE = "campaigns"
DELIVERIES_EXCHANGE = "deliveries"
RETRY_EXCHANGE = "deliveries.retry"
DEAD_EXCHANGE = "deliveries.dead"
OUTCOMES_EXCHANGE = "outcomes"

CAMPAIGN_EVENTS_QUEUE = "scheduler.campaign-events"
OUTCOMES_QUEUE = "stats.outcomes"

# Receipts ride the outcomes exchange; stats.outcomes is bound with "#", so it gets them too.
RECEIPT_KEY_PREFIX = "receipt."
RECEIPT_HTTP_KEY = RECEIPT_KEY_PREFIX + "http"
RECEIPT_EMAIL_KEY = RECEIPT_KEY_PREFIX + "email"
DEAD_QUEUE = "deliver.dead"
# Each sender's breaker states, every few seconds, on the outcomes exchange: stats keeps them.
SENDER_HEALTH_KEY = "sender.health"


def lane_key(channel: str, kind: str = CAMPAIGN) -> str:
    """A lane's routing key on the deliveries exchange: notifications have a lane of their own.

    Quorum queues (3.10) have no message priorities, so the priority lane is its own queues,
    which senders consume on connections of their own and never behind campaign batches.
    """
    return f"{channel}.priority" if kind == NOTIFICATION else channel


def delivery_queue(channel: str, kind: str = CAMPAIGN) -> str:
    return f"deliver.{lane_key(channel, kind)}"


def retry_queue(channel: str, delay_ms: int, kind: str = CAMPAIGN) -> str:
    return f"deliver.{lane_key(channel, kind)}.retry.{delay_ms // 1000}s"


def retry_routing_key(channel: str, delay_ms: int, kind: str = CAMPAIGN) -> str:
    return f"{lane_key(channel, kind)}.{delay_ms}"


# What a sender must hear about at once: whether a campaign's items may still start.
# campaign.held is a periodic snapshot {"campaign_ids": [...]} of every held campaign;
# gateway.delivery one of the gateways whose receipts say they deliver too little (stats).
GATEWAY_DELIVERY_KEY = "gateway.delivery"
SENDER_CONTROL_KEYS = (
    "campaign.paused",
    "campaign.resumed",
    "campaign.cancelled",
    "campaign.held",
    GATEWAY_DELIVERY_KEY,
)


def sender_control_bindings() -> tuple[tuple[str, str], ...]:
    """(exchange, routing key) of every event a sender's control queue receives."""
    return tuple((CAMPAIGNS_EXCHANGE, key) for key in SENDER_CONTROL_KEYS)


def sender_control_queue(instance: str) -> str:
    return f"sender.control.{instance}"


def declare_sender_control(channel: BlockingChannel, instance: str) -> str:
    """Declare a sender's own control queue: exclusive to its connection and gone with it."""
    name = sender_control_queue(instance)
    channel.queue_declare(name, durable=False, exclusive=True, auto_delete=True)
    for exchange_name, routing_key in sender_control_bindings():
        channel.queue_bind(name, exchange_name, routing_key)
    return name


@dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing key)
    arguments: dict[str, Any] = field(default_factory=dict)


# Quorum queues on 3.10 have no default delivery limit: a message that kills its consumer
# every time would loop for ever. Past this many deliveries it is parked instead.
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": 50}
# A delivery batch is redelivered each time a sender holding it dies, and a batch parked by
# the broker leaves its messages queued with no outcome; so the delivery queues keep the
# guard only against a true crash loop, far beyond what restarts of senders produce.
DELIVERY_QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": 1000}


def build_topology(retry_delays_ms: tuple[int, ...]) -> tuple[list[Exchange], list[Queue]]:
    """The whole topology for the given retry tiers."""
    exchanges = [
        Exchange(CAMPAIGNS_EXCHANGE, "topic"),
        Exchange(DELIVERIES_EXCHANGE, "direct"),
        Exchange(RETRY_EXCHANGE, "direct"),
        Exchange(DEAD_EXCHANGE, "fanout"),
        Exchange(OUTCOMES_EXCHANGE, "topic"),
    ]
    dead_letter_to_parking = {"x-dead-letter-exchange": DEAD_EXCHANGE}
    queues = [
        Queue(
            CAMPAIGN_EVENTS_QUEUE,
            ((CAMPAIGNS_EXCHANGE, "campaign.*"),),
            {**QUORUM, **dead_letter_to_parking},
        ),
        Queue(OUTCOMES_QUEUE, ((OUTCOMES_EXCHANGE, "#"),), {**QUORUM, **dead_letter_to_parking}),
        Queue(DEAD_QUEUE, ((DEAD_EXCHANGE, ""),), dict(QUORUM)),
    ]
    for channel in channels.names():
        for kind in KINDS:
            queues.extend(_lane_queues(channel, kind, retry_delays_ms))
    return exchanges, queues


def _lane_queues(channel: str, kind: str, retry_delays_ms: tuple[int, ...]) -> list[Queue]:
    """A lane's delivery queue and its retry tiers, which lead back to it."""
    key = lane_key(channel, kind)
    queues = [
        Queue(
            delivery_queue(channel, kind),
            ((DELIVERIES_EXCHANGE, key),),
            {**DELIVERY_QUORUM, "x-dead-letter-exchange": DEAD_EXCHANGE},
        )
    ]
    for delay_ms in retry_delays_ms:
        # A fixed TTL per tier: quorum queues expire only at the head, so mixed
        # per-message delays in one queue would wait behind the longest.
        queues.append(
            Queue(
                retry_queue(channel, delay_ms, kind),
                ((RETRY_EXCHANGE, retry_routing_key(channel, delay_ms, kind)),),
                {
                    **QUORUM,
                    "x-message-ttl": delay_ms,
                    "x-dead-letter-exchange": DELIVERIES_EXCHANGE,
                    "x-dead-letter-routing-key": key,
                },
            )
        )
    return queues


def declare_all(channel: BlockingChannel, retry_delays_ms: tuple[int, ...]) -> None:
    """Declare every exchange, queue and binding; a no-op when they already exist."""
    exchanges, queues = build_topology(retry_delays_ms)
    for exchange in exchanges:
        channel.exchange_declare(exchange.name, exchange.kind, durable=True)
    for queue in queues:
        channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        for exchange_name, routing_key in queue.bindings:
            channel.queue_bind(queue.name, exchange_name, routing_key)
