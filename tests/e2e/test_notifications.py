"""An application's notifications through the whole stack, driven only over the REST API and
seen at the gateway: sent while a campaign goes out, rendered from a stored template, held by
a shut send window, counted in the stats apart from campaigns."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

FINAL = ("sent", "failed", "expired", "cancelled")


def notification(running, notification_id: int) -> dict:
    return running.api.request("GET", f"/notifications/{notification_id}")


def final_status(running, notification_id: int) -> dict:
    return wait_until(
        lambda: (n := notification(running, notification_id))["status"] in FINAL and n,
        timeout=30,
    )


def test_a_code_goes_out_while_a_campaign_runs_and_is_counted_apart(running):
    clients = [{"phone": f"+7916{4000000 + i:07d}", "tags": ["bulk"]} for i in range(1500)]
    assert running.api.import_clients(clients)["rejected"] == 0
    now = dt.datetime.now(dt.UTC)
    campaign = running.api.create_campaign(
        name="bulk beside codes",
        channel="http",
        text="Sale today",
        filter={"tags": ["bulk"], "operator_codes": []},
        starts_at=now.isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
        rate_limit=150,  # about ten seconds of campaign traffic
    )
    wait_until(lambda: running.api.stats(campaign["id"])["sent"] > 100, timeout=30)

    accepted = running.api.request(
        "POST",
        "/notifications",
        expect=202,
        json={"channel": "http", "to": {"phone": "+79161234567"}, "text": "Code 1234"},
    )
    done = final_status(running, accepted["id"])

    assert done["status"] == "sent" and done["attempts"] == 1
    assert running.api.stats(campaign["id"])["status"] == "running"  # the bulk still goes on
    body = running.gateway.last_body(accepted["id"])
    assert body is not None and (body["phone"], body["text"]) == ("79161234567", "Code 1234")
    totals = running.api.request("GET", "/stats")["notifications"]
    assert totals["by_channel"]["http"]["sent"] >= 1
    stats_port = running.stack.metrics_base + 1
    metrics = requests.get(f"http://127.0.0.1:{stats_port}/metrics", timeout=10)
    sent = re.search(
        r'^herald_stats_notifications\{channel="http",status="sent"\} (\S+)$',
        metrics.text,
        re.M,
    )
    assert sent is not None and float(sent.group(1)) >= 1


def test_a_stored_template_is_rendered_for_a_client(running):
    created = running.api.request(
        "POST",
        "/clients",
        expect=201,
        json={"phone": "+79165550101", "attributes": {"name": "Ann"}},
    )
    running.api.request(
        "POST",
        "/templates",
        expect=201,
        json={
            "name": "login-code",
            "channel": "http",
            "text": "{{ name }}, your code is {{ code }}",
        },
    )
    accepted = running.api.request(
        "POST",
        "/notifications",
        expect=202,
        json={
            "channel": "http",
            "to": {"client_id": created["id"]},
            "template": "login-code",
            "variables": {"code": "9876"},
        },
    )
    assert final_status(running, accepted["id"])["status"] == "sent"
    assert running.gateway.last_body(accepted["id"])["text"] == "Ann, your code is 9876"


def test_a_notification_outside_its_send_window_waits(running):
    now = dt.datetime.now(dt.UTC)
    # A window that opened an hour ago and closed a minute later, in UTC: shut until tomorrow.
    start = (now - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (now - dt.timedelta(minutes=59)).strftime("%H:%M")
    accepted = running.api.request(
        "POST",
        "/notifications",
        expect=202,
        json={
            "channel": "http",
            "to": {"phone": "+79165550102"},
            "text": "Tomorrow",
            "expires_at": (now + dt.timedelta(days=2)).isoformat(),
            "send_window": {"start": start, "end": end, "timezone": "UTC"},
        },
    )
    sent_now = running.api.request(
        "POST",
        "/notifications",
        expect=202,
        json={"channel": "http", "to": {"phone": "+79165550103"}, "text": "Now"},
    )
    assert final_status(running, sent_now["id"])["status"] == "sent"

    waiting = notification(running, accepted["id"])
    assert (waiting["status"], waiting["released_at"]) == ("queued", None)
    assert running.gateway.delivery_count(accepted["id"]) == 0
