"""Each tick: claim due messages within the campaign's budget, publish them as batches, mark queued.

Claim, publish and commit happen in one transaction: if a publish fails the claim rolls
back and the messages stay pending; a crash after the publish re-releases them, and the
message id (the idempotency key) absorbs that duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from sqlalchemy import Engine

from services.scheduler import metrics
from shared.config import Settings
from shared.db.queries.messages import DueMessage, claim_due
from shared.db.queries.scheduling import Releasable, releasable
from shared.domain.templates import render
from shared.messaging.envelopes import DeliveryBatch, DeliveryItem
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import DELIVERIES_EXCHANGE

log = logging.getLogger(__name__)


def template_values(message: DueMessage) -> dict[str, object]:
    """The variables a template may use: the client's attributes, then its fields."""
    return {
        **message.attributes,
        "phone": message.phone,
        "email": message.email,
        "operator_code": message.operator_code,
        "timezone": message.timezone,
    }


def to_item(campaign: Releasable, message: DueMessage) -> DeliveryItem:
    values = template_values(message)
    address = message.email if campaign.channel == "email" else message.phone
    return DeliveryItem(
        message_id=message.id,
        address=address or "",
        text=render(campaign.text, values),
        attempt=1,
        deadline=campaign.ends_at.timestamp(),
        subject=render(campaign.subject, values) if campaign.subject else None,
    )


def chunks(items: Sequence[DeliveryItem], size: int) -> Iterator[tuple[DeliveryItem, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def release_campaign(
    engine: Engine, publisher: ConfirmingPublisher, campaign: Releasable, settings: Settings
) -> int:
    """Release up to this tick's budget of one campaign; returns how many messages."""
    budget = min(settings.release_per_tick, settings.max_queued_per_campaign - campaign.queued)
    if budget <= 0:
        return 0
    with engine.begin() as conn:
        due = claim_due(conn, campaign.id, budget)
        items = [to_item(campaign, message) for message in due]
        headers: dict[str, object] = {"x-campaign-id": campaign.id}
        if campaign.correlation_id:
            headers["x-correlation-id"] = campaign.correlation_id
        for batch in chunks(items, settings.batch_size):
            body = DeliveryBatch(campaign.id, campaign.channel, batch).encode()
            publisher.publish(DELIVERIES_EXCHANGE, campaign.channel, body, headers=headers)
            metrics.BATCHES.labels(campaign.channel).inc()
    metrics.RELEASED.labels(campaign.channel).inc(len(items))
    return len(items)


def release_due(engine: Engine, publisher: ConfirmingPublisher, settings: Settings) -> int:
    """Release every running campaign's due messages for this tick; returns how many."""
    with engine.connect() as conn:
        campaigns = releasable(conn)
    return sum(release_campaign(engine, publisher, c, settings) for c in campaigns)
