"""Webhooks never in the way, never lost: a hanging subscriber leaves a campaign's rate as it
was, and a deliverer killed mid-delivery sends every event once started again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.faults.conftest import RECIPIENTS, FaultRun, Launcher
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Subscriber

# Half the clients each: two campaigns of the same size, one without a webhook, one with.
FIRST_HALF = ("news", "promo")
SECOND_HALF = ("vip", "sport")
RATE_SHARE = 0.7  # a robust floor on two shared cores; a webhook in the way costs far more
# Loopback subscribers: the tests own them (unsafe anywhere else).
WEBHOOK_ENV = {"HERALD_WEBHOOK_TIMEOUT_S": "2", "HERALD_WEBHOOK_ALLOW_PRIVATE": "true"}
MESSAGE_EVENTS = ["message.sent", "message.failed", "message.delivered", "message.undelivered"]


def subscribe(run: FaultRun, url: str, events: list[str]) -> dict[str, Any]:
    response = run.http.post(
        f"{run.api_url}/api/v1/webhooks", json={"url": url, "events": events}, timeout=30
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def delivery_rate(run: FaultRun, campaign_id: int) -> float:
    """Messages sent per second from the first to the last, as the database recorded them."""
    with run.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS n, extract(epoch FROM max(sent_at) - min(sent_at)) AS s"
                " FROM message WHERE campaign_id = :c AND sent_at IS NOT NULL"
            ),
            {"c": campaign_id},
        ).one()
    return float(row.n) / max(float(row.s), 1e-3)


def test_a_hanging_webhook_leaves_the_campaign_rate_as_it_was(faults: Launcher) -> None:
    hanging = Subscriber(hang=True)
    url = hanging.start()
    try:
        run = faults.launch(senders=2, env=WEBHOOK_ENV)
        alone = run.start_campaign(FIRST_HALF)
        assert run.wait_finished(alone)["status"] == "completed"
        subscribe(run, url, [*MESSAGE_EVENTS, "campaign.started", "campaign.completed"])
        beside = run.start_campaign(SECOND_HALF)
        final = run.wait_finished(beside)
    finally:
        hanging.stop()

    assert final["status"] == "completed" and final["sent"] == RECIPIENTS // 2
    rate_alone, rate_beside = delivery_rate(run, alone), delivery_rate(run, beside)
    assert rate_beside >= RATE_SHARE * rate_alone, (rate_alone, rate_beside)
    # The hanging subscriber was tried (and owed every event), never the campaign's problem.
    with run.engine.connect() as conn:
        owed = conn.execute(
            text("SELECT coalesce(sum(events), 0) FROM webhook_event WHERE delivered_at IS NULL")
        ).scalar_one()
        tried = conn.execute(text("SELECT count(*) FROM webhook_attempt")).scalar_one()
    assert owed >= RECIPIENTS // 2 and tried > 0
    assert run.exited() == {}


def test_the_deliverer_killed_mid_delivery_sends_every_event_once_started_again(
    faults: Launcher,
) -> None:
    # A slow subscriber spreads the deliveries out, so the kill lands in the middle of them.
    subscriber = Subscriber(delay_s=0.05)
    url = subscriber.start()
    try:
        run = faults.launch(senders=2, env=WEBHOOK_ENV)
        hook = subscribe(run, url, ["message.sent", "campaign.completed"])
        campaign_id = run.start_campaign()

        def half_told() -> bool:
            return len(subscriber.events(hook["secret"])) >= RECIPIENTS // 2

        wait_until(half_told, timeout=120)
        run.stack.kill("webhooks")
        run.stack.start("webhooks")
        assert run.wait_finished(campaign_id)["status"] == "completed"

        def all_told() -> list[dict[str, Any]] | None:
            events = subscriber.events(hook["secret"])
            sent = {e["data"]["id"] for e in events if e["type"] == "message.sent"}
            done = any(e["type"] == "campaign.completed" for e in events)
            return events if len(sent) == RECIPIENTS and done else None

        events = wait_until(all_told, timeout=180, interval=1.0)
    finally:
        subscriber.stop()

    with run.engine.connect() as conn:
        ids = set(
            conn.execute(
                text("SELECT id FROM message WHERE campaign_id = :c"), {"c": campaign_id}
            ).scalars()
        )
    assert {e["data"]["id"] for e in events if e["type"] == "message.sent"} == ids
    deliveries = run.http.get(f"{run.api_url}/api/v1/webhooks/{hook['id']}/deliveries", timeout=30)
    assert deliveries.status_code == 200 and deliveries.json()["items"]
    assert run.exited() == {}
