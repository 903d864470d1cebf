"""Stats read models: one campaign's progress with its rate over the last 10 s, every campaign."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import READ_TOKEN, WRITE_TOKEN

WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ENDS_AT = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def campaign_with_progress(
    api: FlaskClient, engine: Engine, status: str = "running", **counts: int
) -> int:
    """A campaign with `counts` messages per status; its counters follow them (the trigger).

    Sent messages are stamped an hour ago, outside the rate window, until sent_messages
    stamps some of them later.
    """
    body = {"name": "c", "channel": "http", "text": "t", "ends_at": ENDS_AT}
    cid: int = api.post("/api/v1/campaigns", json=body, headers=WRITE).json["id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaign SET status = :s WHERE id = :c"), {"s": status, "c": cid})
        for message_status, n in counts.items():
            conn.execute(
                text(
                    "INSERT INTO message (campaign_id, status, sent_at)"
                    " SELECT :c, :s, CASE WHEN :s = 'sent' THEN now() - interval '1 hour' END"
                    " FROM generate_series(1, :n)"
                ),
                {"c": cid, "s": message_status, "n": n},
            )
    return cid


def sent_messages(engine: Engine, cid: int, count: int, seconds_ago: float) -> None:
    """Stamp `count` of the campaign's sent messages as sent `seconds_ago`."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE message SET sent_at = now() - make_interval(secs => :ago)"
                " WHERE id IN (SELECT id FROM message WHERE campaign_id = :c AND status = 'sent'"
                "              AND sent_at <= now() - interval '1 hour' LIMIT :n)"
            ),
            {"c": cid, "n": count, "ago": seconds_ago},
        )


def test_campaign_stats_derive_percent_rate_and_eta(api: FlaskClient, engine: Engine) -> None:
    cid = campaign_with_progress(
        api, engine, pending=30, queued=20, sent=40, failed=6, expired=3, cancelled=1
    )
    sent_messages(engine, cid, 15, seconds_ago=60)
    sent_messages(engine, cid, 25, seconds_ago=2)

    response = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ)

    assert response.status_code == 200
    assert response.json == {
        "campaign_id": cid,
        "status": "running",
        "total": 100,
        "pending": 30,
        "queued": 20,
        "sent": 40,
        "failed": 6,
        "expired": 3,
        "cancelled": 1,
        "delivered": 0,
        "undelivered": 0,
        "awaiting_receipt": 40,
        "delivery_rate": 0.0,
        "done": 50,
        "percent_done": 50.0,
        "rate_per_s": 2.5,
        "eta_s": 20.0,
        "left_out": {"no_address": 0, "opted_out": 0},
        # Messages stored without segments or gateway (as before the sender recorded them).
        "segments_sent": 0,
        "by_gateway": {},
    }


def test_the_rate_falls_to_zero_once_sending_stops(api: FlaskClient, engine: Engine) -> None:
    cid = campaign_with_progress(api, engine, status="paused", pending=5, sent=5)
    sent_messages(engine, cid, 5, seconds_ago=11)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert (stats["rate_per_s"], stats["eta_s"]) == (0.0, None)


def test_without_sends_the_rate_is_zero_and_the_eta_unknown(
    api: FlaskClient, engine: Engine
) -> None:
    cid = campaign_with_progress(api, engine, pending=10)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert (stats["percent_done"], stats["rate_per_s"], stats["eta_s"]) == (0.0, 0.0, None)


@pytest.mark.parametrize(("status", "percent"), [("completed", 100.0), ("scheduled", 0.0)])
def test_an_empty_campaign_is_done_only_once_completed(
    api: FlaskClient, engine: Engine, status: str, percent: float
) -> None:
    cid = campaign_with_progress(api, engine, status=status)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert stats["percent_done"] == percent
    assert stats["eta_s"] == 0.0


def test_all_stats_list_every_campaign_and_sum_the_counts(api: FlaskClient, engine: Engine) -> None:
    one = campaign_with_progress(api, engine, sent=4, pending=6)
    sent_messages(engine, one, 4, seconds_ago=1)
    two = campaign_with_progress(api, engine, status="completed", sent=3, failed=2)

    response = api.get("/api/v1/stats", headers=READ)

    assert response.status_code == 200
    assert [c["campaign_id"] for c in response.json["campaigns"]] == [one, two]
    assert response.json["campaigns"][0]["rate_per_s"] == 0.4
    assert response.json["campaigns"][1]["percent_done"] == 100.0
    assert response.json["totals"] == {
        "total": 15,
        "pending": 6,
        "queued": 0,
        "sent": 7,
        "failed": 2,
        "expired": 0,
        "cancelled": 0,
        "delivered": 0,
        "undelivered": 0,
        "awaiting_receipt": 7,
        "delivery_rate": 0.0,
    }


def test_stats_of_an_unknown_campaign_are_404(api: FlaskClient) -> None:
    assert api.get("/api/v1/campaigns/42/stats", headers=READ).status_code == 404


def test_receipts_split_sent_into_delivered_and_undelivered(
    api: FlaskClient, engine: Engine
) -> None:
    cid = campaign_with_progress(
        api,
        engine,
        pending=2,
        queued=3,
        sent=10,
        delivered=72,
        undelivered=8,
        failed=2,
        expired=2,
        cancelled=1,
    )

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    # sent is every message the gateway took, so it reads as before receipts came.
    assert {k: stats[k] for k in ("total", "sent", "delivered", "undelivered")} == {
        "total": 100,
        "sent": 90,
        "delivered": 72,
        "undelivered": 8,
    }
    assert (stats["awaiting_receipt"], stats["delivery_rate"]) == (10, 0.8)
    assert (stats["done"], stats["percent_done"], stats["eta_s"]) == (95, 95.0, None)


def test_a_campaign_with_nothing_sent_has_no_delivery_rate(
    api: FlaskClient, engine: Engine
) -> None:
    cid = campaign_with_progress(api, engine, pending=4)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert (stats["sent"], stats["delivery_rate"]) == (0, None)


def test_all_stats_derive_the_rate_from_the_summed_counts(api: FlaskClient, engine: Engine) -> None:
    campaign_with_progress(api, engine, sent=1, delivered=9)
    campaign_with_progress(api, engine, status="completed", delivered=1, undelivered=9)

    totals = api.get("/api/v1/stats", headers=READ).json["totals"]

    assert {k: totals[k] for k in ("sent", "delivered", "undelivered", "awaiting_receipt")} == {
        "sent": 20,
        "delivered": 10,
        "undelivered": 9,
        "awaiting_receipt": 1,
    }
    assert totals["delivery_rate"] == 0.5


def test_segments_sent_and_figures_per_gateway(api: FlaskClient, engine: Engine) -> None:
    cid = campaign_with_progress(api, engine)
    rows = [
        # status, gateway, segments, how many
        ("sent", "alpha", 1, 3),
        ("delivered", "alpha", 2, 2),
        ("undelivered", "alpha", 1, 1),
        ("delivered", "beta", 3, 4),
        ("sent", None, None, 2),  # before the gateway was recorded
        ("failed", "beta", 1, 5),
        ("queued", None, None, 7),
    ]
    with engine.begin() as conn:
        for status, gateway, segments, n in rows:
            conn.execute(
                text(
                    "INSERT INTO message (campaign_id, status, gateway, segments)"
                    " SELECT :c, :s, :g, :n_segments FROM generate_series(1, :n)"
                ),
                {"c": cid, "s": status, "g": gateway, "n_segments": segments, "n": n},
            )
    other = campaign_with_progress(api, engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO message (campaign_id, status, gateway, segments)"
                " VALUES (:c, 'sent', 'alpha', 9)"
            ),
            {"c": other},
        )

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert stats["segments_sent"] == 3 + 4 + 1 + 12
    assert stats["by_gateway"] == {
        "alpha": {"sent": 6, "delivered": 2, "undelivered": 1, "segments": 8},
        "beta": {"sent": 4, "delivered": 4, "undelivered": 0, "segments": 12},
    }
    assert stats["sent"] == 12


def test_a_campaign_nothing_was_sent_for_has_no_gateways(api: FlaskClient, engine: Engine) -> None:
    cid = campaign_with_progress(api, engine, pending=3)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats", headers=READ).json

    assert (stats["segments_sent"], stats["by_gateway"]) == (0, {})
