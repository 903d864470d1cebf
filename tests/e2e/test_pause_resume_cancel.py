"""An operator stops a running campaign: within a second nothing new goes out, and nothing twice."""

from __future__ import annotations

import datetime as dt
import time

from tests.support.waiting import wait_until

RECIPIENTS = 2000
RATE = 200  # messages per second: the campaign runs ~10 s, long enough to stop it midway
STOP_WITHIN_S = 1.0


def launch(running, tag: str) -> int:
    clients = [
        {"phone": f"+7916{3000000 + i:07d}" if tag == "p" else f"+7926{3000000 + i:07d}",
         "tags": [tag]}
        for i in range(RECIPIENTS)
    ]  # fmt: skip
    assert running.api.import_clients(clients)["rejected"] == 0
    now = dt.datetime.now(dt.UTC)
    campaign = running.api.create_campaign(
        name=f"stoppable {tag}",
        channel="http",
        text="Hello",
        filter={"tags": [tag], "operator_codes": []},
        starts_at=now.isoformat(),
        ends_at=(now + dt.timedelta(hours=1)).isoformat(),
        rate_limit=RATE,
    )
    return campaign["id"]


def sends_after(running, moment: float) -> list[int]:
    return [
        r.message_id
        for r in running.gateway.recorder.requests()
        if r.outcome == "delivered" and r.at_monotonic > moment
    ]


def delivered(running) -> int:
    return running.gateway.recorder.stats()["deliveries"]


def test_pause_stops_new_deliveries_and_resume_finishes_without_doubles(running):
    running.gateway.reset()
    campaign_id = launch(running, "p")
    wait_until(lambda: delivered(running) >= 300, timeout=60)

    paused = running.api.request("POST", f"/campaigns/{campaign_id}/pause")
    stopped_at = time.monotonic()
    wait_until(lambda: running.api.stats(campaign_id)["queued"] == 0, timeout=30)
    late = sends_after(running, stopped_at + STOP_WITHIN_S)
    held = delivered(running)
    resumed = running.api.request("POST", f"/campaigns/{campaign_id}/resume")
    final = wait_until(
        lambda: (s := running.api.stats(campaign_id))["status"] == "completed" and s, timeout=90
    )

    assert (paused["status"], resumed["status"]) == ("paused", "running")
    assert len(sends_after(running, 0.0)) >= 300  # the gateway does record send times
    assert late == []
    assert held < RECIPIENTS
    assert final["sent"] == RECIPIENTS
    gateway = running.gateway.recorder.stats()
    assert (gateway["distinct_ids"], gateway["duplicates"]) == (RECIPIENTS, 0)


def test_cancel_stops_new_deliveries_and_cancels_every_unsent_message(running):
    running.gateway.reset()
    campaign_id = launch(running, "c")
    wait_until(lambda: delivered(running) >= 300, timeout=60)

    cancelled = running.api.request("POST", f"/campaigns/{campaign_id}/cancel")
    stopped_at = time.monotonic()
    final = wait_until(
        lambda: (s := running.api.stats(campaign_id))["pending"] + s["queued"] == 0 and s,
        timeout=30,
    )
    late = sends_after(running, stopped_at + STOP_WITHIN_S)

    assert cancelled["status"] == "cancelled"
    assert len(sends_after(running, 0.0)) >= 300
    assert late == []
    assert final["status"] == "cancelled"
    assert final["cancelled"] > 0
    assert final["sent"] + final["cancelled"] == RECIPIENTS
    assert final["sent"] == delivered(running)
