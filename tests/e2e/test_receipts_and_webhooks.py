"""A user's view of what happened after the gateway said OK, and who is told.

The sandbox gateway posts receipts back to the API (a share undelivered), a subscriber
verifies every webhook POST with the `standardwebhooks` package, and the campaign's stats,
its messages and the events the subscriber received all tell the same story.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from deploy.stack import Stack
from sandbox.gateway import GatewayServer, ReceiptOptions
from shared.db.migrate import rebuild
from tests.conftest import RECEIPTS_TOKEN, WRITE_TOKEN, reset_vhost
from tests.support.api_client import ApiClient
from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Subscriber

DATABASE_URL = (
    os.environ.get(
        "HERALD_E2E_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_e2e"
    ).rsplit("/", 1)[0]
    + "/herald_e2e_receipts"
)
VHOST = os.environ.get("HERALD_E2E_VHOST", "herald_e2e") + "_receipts"
GATEWAY_TOKEN = "e2e-receipts-gateway-token"
RECIPIENTS = 300
UNDELIVERED_SHARE = 0.2


@dataclass
class Running:
    api: ApiClient
    subscriber: Subscriber
    hook_url: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    receipts = ReceiptOptions(
        url=f"{api_url}/api/v1/receipts/http",
        token=RECEIPTS_TOKEN,
        delay_s=0.2,
        undelivered_share=UNDELIVERED_SHARE,
        seed=7,
    )
    gateway = GatewayServer(token=GATEWAY_TOKEN, receipts=receipts).start()
    subscriber = Subscriber()
    hook_url = subscriber.start()
    env = {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write,{RECEIPTS_TOKEN}:receipts",
        "HERALD_API_PORT": str(api_port),
        "HERALD_GATEWAY_URL": gateway.url,
        "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=1, log_dir=log_dir, metrics_base=free_port_block(20))
    stack.start()
    try:
        stack.wait_ready(api_url)
        yield Running(ApiClient(api_url, WRITE_TOKEN), subscriber, hook_url)
    finally:
        stack.stop()
        gateway.stop()
        subscriber.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


def settled(api: ApiClient, campaign_id: int) -> dict[str, Any] | None:
    stats = api.stats(campaign_id)
    done = stats["status"] == "completed" and stats["awaiting_receipt"] == 0
    return stats if done else None


def test_receipts_reach_the_stats_and_every_outcome_reaches_the_subscriber(running: Running):
    hook = running.api.request(
        "POST",
        "/webhooks",
        expect=201,
        json={
            "url": running.hook_url,
            "events": [
                "message.sent",
                "message.delivered",
                "message.undelivered",
                "campaign.started",
                "campaign.completed",
            ],
        },
    )
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in running.api.request("GET", f"/webhooks/{hook['id']}")
    clients = [
        {"phone": f"+7916{2000000 + i:07d}", "tags": ["news"], "timezone": "UTC"}
        for i in range(RECIPIENTS)
    ]
    assert running.api.import_clients(clients)["created"] == RECIPIENTS
    now = dt.datetime.now(dt.UTC)
    campaign = running.api.create_campaign(
        name="receipts",
        channel="http",
        text="Hello",
        filter={"tags": ["news"], "operator_codes": []},
        starts_at=now.isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
    )

    stats = wait_until(partial(settled, running.api, campaign["id"]), timeout=120)

    assert stats["sent"] == stats["delivered"] + stats["undelivered"] == RECIPIENTS
    assert 0 < stats["undelivered"] < RECIPIENTS * UNDELIVERED_SHARE * 2
    assert stats["delivery_rate"] == pytest.approx(stats["delivered"] / RECIPIENTS)
    messages = list(running.api.pages(f"/campaigns/{campaign['id']}/messages"))
    by_status: dict[str, set[int]] = {}
    for message in messages:
        by_status.setdefault(message["status"], set()).add(message["id"])
    assert {s: len(ids) for s, ids in by_status.items()} == {
        "delivered": stats["delivered"],
        "undelivered": stats["undelivered"],
    }

    def told() -> list[dict[str, Any]] | None:
        events = running.subscriber.events(hook["secret"])
        types = [e["type"] for e in events]
        complete = types.count("message.sent") == RECIPIENTS and "campaign.completed" in types
        receipts = types.count("message.delivered") + types.count("message.undelivered")
        return events if complete and receipts == RECIPIENTS else None

    events = wait_until(told, timeout=60)
    ids_of = {
        kind: {e["data"]["id"] for e in events if e["type"] == f"message.{kind}"}
        for kind in ("sent", "delivered", "undelivered")
    }
    assert ids_of["sent"] == {m["id"] for m in messages}
    assert ids_of["delivered"] == by_status["delivered"]
    assert ids_of["undelivered"] == by_status["undelivered"]
    campaign_events = [e for e in events if e["type"].startswith("campaign.")]
    assert [e["type"] for e in campaign_events] == ["campaign.started", "campaign.completed"]
    # Message events come in arrays: far fewer POSTs than events.
    assert len(running.subscriber.posts) < RECIPIENTS
    deliveries = running.api.request("GET", f"/webhooks/{hook['id']}/deliveries")
    assert deliveries["items"] and {d["status_code"] for d in deliveries["items"]} == {204}
