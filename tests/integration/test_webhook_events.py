"""The database writes webhook events with the status change that causes them (migration 0007).

Whichever statement moves a status, a subscriber of that event type gets it, batched for
messages and notifications, one per campaign change; nothing for a change that rolls back,
for an unsubscribed type, or for a disabled subscription.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from shared.db.models import Message, Notification, Webhook
from shared.db.queries import statuses
from shared.domain.receipts import Receipt
from shared.domain.statuses import CampaignStatus
from shared.messaging.envelopes import Outcome
from tests.support.factories import make_campaign, make_clients

pytestmark = pytest.mark.integration

EVENTS_PER_ROW = 500


def subscribe(engine: Engine, *events: str, enabled: bool = True) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Webhook)
                .values(url="http://127.0.0.1:9/hook", events=list(events), secret="whsec_x")
                .values(enabled=enabled)
                .returning(Webhook.id)
            ).scalar_one()
        )


def queued_messages(engine: Engine, count: int) -> tuple[int, list[int]]:
    clients = make_clients(engine, count)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        rows = [{"campaign_id": campaign_id, "client_id": c, "status": "queued"} for c in clients]
        conn.execute(insert(Message), rows)
        ids = conn.execute(text("SELECT id FROM message ORDER BY id")).scalars().all()
    return campaign_id, list(ids)


def event_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        query = text("SELECT webhook_id, events, payload FROM webhook_event ORDER BY id")
        return list(conn.execute(query).all())


def send_all(engine: Engine, ids: list[int], status: str = "sent") -> None:
    with engine.begin() as conn:
        statuses.apply_outcomes(conn, [Outcome(i, status, 1, time.time(), None) for i in ids])


def test_a_batch_of_outcomes_becomes_arrays_of_at_most_500_events(engine: Engine):
    webhook_id = subscribe(engine, "message.sent")
    campaign_id, ids = queued_messages(engine, 1200)

    send_all(engine, ids)

    rows = event_rows(engine)
    assert [row.events for row in rows] == [500, 500, 200]
    events = [event for row in rows for event in row.payload]
    assert {row.webhook_id for row in rows} == {webhook_id}
    assert [e["data"]["id"] for e in events] == ids
    assert {e["type"] for e in events} == {"message.sent"}
    first = events[0]["data"]
    assert first["campaign_id"] == campaign_id and first["status"] == "sent"
    assert first["sent_at"] is not None and "timestamp" in events[0]


def test_only_subscribed_types_and_enabled_webhooks_get_events(engine: Engine):
    failed_only = subscribe(engine, "message.failed")
    subscribe(engine, "message.sent", "message.failed", enabled=False)
    _, ids = queued_messages(engine, 4)

    send_all(engine, ids[:2], "sent")
    send_all(engine, ids[2:], "failed")

    rows = event_rows(engine)
    assert [row.webhook_id for row in rows] == [failed_only]
    assert [e["data"]["id"] for e in rows[0].payload] == ids[2:]
    assert {e["type"] for e in rows[0].payload} == {"message.failed"}


def test_a_status_change_that_rolls_back_tells_nothing(engine: Engine):
    subscribe(engine, "message.sent")
    _, ids = queued_messages(engine, 3)

    with pytest.raises(RuntimeError), engine.begin() as conn:
        statuses.apply_outcomes(conn, [Outcome(i, "sent", 1, time.time(), None) for i in ids])
        raise RuntimeError("the transaction fails after the update")

    assert event_rows(engine) == []


def test_receipts_tell_delivered_and_undelivered_with_the_error(engine: Engine):
    subscribe(engine, "message.delivered", "message.undelivered")
    _, ids = queued_messages(engine, 2)
    send_all(engine, ids)

    with engine.begin() as conn:
        statuses.apply_receipts(
            conn,
            [
                Receipt(ids[0], "delivered", None, time.time()),
                Receipt(ids[1], "undelivered", "rejected: absent subscriber", time.time()),
            ],
        )

    (row,) = event_rows(engine)
    by_id = {e["data"]["id"]: e for e in row.payload}
    assert by_id[ids[0]]["type"] == "message.delivered"
    assert by_id[ids[0]]["data"]["delivered_at"] is not None
    assert by_id[ids[1]]["type"] == "message.undelivered"
    assert by_id[ids[1]]["data"]["error"] == "rejected: absent subscriber"


def test_notifications_tell_their_own_events(engine: Engine):
    subscribe(engine, "notification.sent", "message.sent")
    with engine.begin() as conn:
        notification_id = conn.execute(
            insert(Notification)
            .values(
                channel="http",
                address="+79000000001",
                text="Your code is 1234",
                expires_at=text("now() + interval '1 hour'"),
            )
            .returning(Notification.id)
        ).scalar_one()
        statuses.apply_notification_outcomes(
            conn, [Outcome(notification_id, "sent", 1, time.time(), None)]
        )

    (row,) = event_rows(engine)
    (event,) = row.payload
    assert event["type"] == "notification.sent"
    assert event["data"]["id"] == notification_id and event["data"]["channel"] == "http"


def test_a_campaign_tells_its_start_and_its_end_with_its_counts(engine: Engine):
    subscribe(engine, "campaign.started", "campaign.completed", "campaign.cancelled")
    campaign_id = make_campaign(engine)
    with engine.begin() as conn:
        statuses.start(conn, campaign_id)
    with engine.begin() as conn:
        statuses.finish(conn)
    cancelled = make_campaign(engine)
    with engine.begin() as conn:
        statuses.set_action_status(conn, cancelled, CampaignStatus.CANCELLED)

    events = [e for row in event_rows(engine) for e in row.payload]
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("campaign.started", campaign_id),
        ("campaign.completed", campaign_id),
        ("campaign.cancelled", cancelled),
    ]
    assert events[1]["data"]["progress"]["total"] == 0


def test_without_a_subscription_no_event_is_written(engine: Engine):
    _, ids = queued_messages(engine, 10)
    send_all(engine, ids)
    assert event_rows(engine) == []
