"""A user's view: import clients, launch two campaigns, every matching client gets one SMS."""

from __future__ import annotations

import datetime as dt
from functools import partial

from tests.support.waiting import wait_until

TAGS = ("news", "promo", "vip")
OPERATOR_PREFIXES = {"916": "+7916", "926": "+7926"}


def generated_clients(count: int) -> list[dict]:
    clients = []
    for i in range(count):
        code = "916" if i % 2 == 0 else "926"
        clients.append(
            {
                "phone": f"{OPERATOR_PREFIXES[code]}{1000000 + i:07d}",
                "tags": [TAGS[i % 3]],
                "timezone": "Europe/Moscow",
                "attributes": {"name": f"Client {i}"},
            }
        )
    return clients


def expected_recipients(clients: list[dict], tags: set[str], codes: set[str]) -> set[str]:
    return {
        c["phone"]
        for c in clients
        if (not tags or tags & set(c["tags"])) and (not codes or c["phone"][2:5] in codes)
    }


def delivered_phones(running, campaign_id: int, template_prefix: str) -> dict[str, int]:
    """phone -> deliveries, checked message by message against what the API says was sent."""
    phones_by_client = {c["id"]: c["phone"] for c in running.api.pages("/clients")}
    found: dict[str, int] = {}
    for message in running.api.pages(f"/campaigns/{campaign_id}/messages"):
        body = running.gateway.recorder.last_body(message["id"])
        phone = phones_by_client[message["client_id"]]
        assert body is not None, f"message {message['id']} never reached the gateway"
        assert body["id"] == message["id"]
        assert "+" + body["phone"] == phone
        assert body["text"].startswith(template_prefix)
        found[phone] = running.gateway.recorder.delivery_count(message["id"])
    return found


def test_two_campaigns_reach_exactly_their_recipients_once(running):
    clients = generated_clients(5000)
    report = running.api.import_clients(clients)
    assert (report["created"], report["rejected"]) == (5000, 0)
    now = dt.datetime.now(dt.UTC)
    first = running.api.create_campaign(
        name="news to everyone on 916",
        channel="http",
        text="Hello {{ name }}, news!",
        filter={"tags": ["news"], "operator_codes": ["916"]},
        starts_at=now.isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
    )
    second = running.api.create_campaign(
        name="promo and vip on any operator",
        channel="http",
        text="Dear {{ name }}: promo",
        filter={"tags": ["promo", "vip"], "operator_codes": []},
        starts_at=(now + dt.timedelta(seconds=3)).isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
    )
    first_expected = expected_recipients(clients, {"news"}, {"916"})
    second_expected = expected_recipients(clients, {"promo", "vip"}, set())

    for campaign, expected in ((first, first_expected), (second, second_expected)):
        final = wait_until(partial(running.api.completed_stats, campaign["id"]), timeout=120)
        assert final["total"] == final["sent"] == len(expected)
        assert (final["failed"], final["pending"], final["queued"]) == (0, 0, 0)

    first_sent = delivered_phones(running, first["id"], "Hello Client ")
    second_sent = delivered_phones(running, second["id"], "Dear Client ")
    assert set(first_sent) == first_expected and set(first_sent.values()) == {1}
    assert set(second_sent) == second_expected and set(second_sent.values()) == {1}
    gateway = running.gateway.recorder.stats()
    assert gateway["distinct_ids"] == len(first_expected) + len(second_expected)
    assert gateway["duplicates"] == 0
