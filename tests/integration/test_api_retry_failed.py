"""Failed messages with their reasons, and retry-failed: counters, reopening, 409s, release."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.scheduler.releaser import release_due
from shared.config import Settings
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import declare_all, delivery_queue
from tests.conftest import WRITE_TOKEN
from tests.support.factories import make_campaign, make_clients

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def campaign_with_outcomes(engine: Engine, status: str, **campaign: Any) -> tuple[int, list[int]]:
    """A campaign of 5 clients: 3 failed (with reasons), 2 sent; returns (id, failed ids)."""
    clients = make_clients(engine, 5)
    cid = make_campaign(engine, status=status, started_at=NOW, **campaign)
    with engine.begin() as conn:
        ids = conn.execute(
            text(
                "INSERT INTO message (campaign_id, client_id, status, attempts, last_error)"
                " SELECT :c, client_id, s, 2, e FROM unnest(:clients, :statuses, :errors)"
                " AS v(client_id, s, e) ORDER BY client_id RETURNING id, status"
            ),
            {
                "c": cid,
                "clients": clients,
                "statuses": ["failed", "sent", "failed", "sent", "failed"],
                "errors": ["HTTP 400: bad number", None, "HTTP 422: no", None, "timeout"],
            },
        ).all()
    return cid, [mid for mid, state in ids if state == "failed"]


def progress(engine: Engine, cid: int) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT pending, failed, sent FROM campaign_progress WHERE campaign_id = :c"),
            {"c": cid},
        ).one()
    return dict(row._mapping)


def events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT routing_key FROM outbox ORDER BY id")))


def test_failed_messages_are_listed_with_their_reason(api: FlaskClient, engine: Engine) -> None:
    cid, failed = campaign_with_outcomes(engine, "completed")

    page = api.get(f"/api/v1/campaigns/{cid}/messages?status=failed", headers=AUTH).json

    assert [m["id"] for m in page["items"]] == failed
    assert [m["last_error"] for m in page["items"]] == [
        "HTTP 400: bad number",
        "HTTP 422: no",
        "timeout",
    ]


def test_retry_failed_requeues_them_and_moves_the_counters(
    api: FlaskClient, engine: Engine
) -> None:
    cid, failed = campaign_with_outcomes(engine, "running")

    response = api.post(f"/api/v1/campaigns/{cid}/retry-failed", headers=AUTH)

    assert response.status_code == 200
    assert response.json == {"requeued": 3}
    pending = api.get(f"/api/v1/campaigns/{cid}/messages?status=pending", headers=AUTH).json
    assert [m["id"] for m in pending["items"]] == failed
    assert {m["attempts"] for m in pending["items"]} == {0}
    assert pending["items"][0]["last_error"] == "HTTP 400: bad number"
    assert progress(engine, cid) == {"pending": 3, "failed": 0, "sent": 2}
    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=AUTH).json
    assert (stats["pending"], stats["failed"], stats["done"]) == (3, 0, 2)
    assert events(engine) == ["campaign.updated"]


def test_a_completed_campaign_runs_again(api: FlaskClient, engine: Engine) -> None:
    cid, _ = campaign_with_outcomes(engine, "completed", finished_at=NOW)

    api.post(f"/api/v1/campaigns/{cid}/retry-failed", headers=AUTH)

    campaign = api.get(f"/api/v1/campaigns/{cid}", headers=AUTH).json
    assert (campaign["status"], campaign["finished_at"]) == ("running", None)


def test_nothing_failed_means_nothing_requeued_and_no_event(
    api: FlaskClient, engine: Engine
) -> None:
    cid = make_campaign(engine, status="running", started_at=NOW)

    response = api.post(f"/api/v1/campaigns/{cid}/retry-failed", headers=AUTH)

    assert response.json == {"requeued": 0}
    assert events(engine) == []


@pytest.mark.parametrize(
    ("status", "ends_at", "reason"),
    [
        ("completed", NOW - dt.timedelta(minutes=1), "has passed"),
        ("running", NOW - dt.timedelta(minutes=1), "has passed"),
        ("cancelled", NOW + dt.timedelta(hours=1), "cancelled"),
        ("expired", NOW - dt.timedelta(minutes=1), "expired"),
    ],
)
def test_outside_its_time_range_retry_is_409_and_changes_nothing(
    api: FlaskClient, engine: Engine, status: str, ends_at: dt.datetime, reason: str
) -> None:
    cid, _ = campaign_with_outcomes(
        engine, status, starts_at=NOW - dt.timedelta(hours=2), ends_at=ends_at
    )

    response = api.post(f"/api/v1/campaigns/{cid}/retry-failed", headers=AUTH)

    assert response.status_code == 409
    assert reason in response.json["message"]
    assert progress(engine, cid) == {"pending": 0, "failed": 3, "sent": 2}
    assert api.get(f"/api/v1/campaigns/{cid}", headers=AUTH).json["status"] == status
    assert events(engine) == []


def test_unknown_campaign_is_404(api: FlaskClient) -> None:
    assert api.post("/api/v1/campaigns/404/retry-failed", headers=AUTH).status_code == 404


def test_the_scheduler_releases_exactly_the_requeued_messages(
    api: FlaskClient, engine: Engine, settings: Settings, broker: str
) -> None:
    cid, failed = campaign_with_outcomes(engine, "completed", finished_at=NOW)
    connection = connect(broker, "test-retry-failed")
    channel = connection.channel()
    declare_all(channel, settings.retry_delays_ms)
    channel.queue_purge(delivery_queue("http"))
    api.post(f"/api/v1/campaigns/{cid}/retry-failed", headers=AUTH)

    release_due(engine, ConfirmingPublisher(channel), settings)

    released = []
    while (got := channel.basic_get(delivery_queue("http"), auto_ack=True))[0] is not None:
        released += [item.message_id for item in DeliveryBatch.decode(got[2]).items]
    connection.close()
    assert released == failed
    assert progress(engine, cid) == {"pending": 0, "failed": 0, "sent": 2}
