"""Receipts survive a stats writer killed while they flow: every one applied, counts exact."""

from __future__ import annotations

import threading

import requests
from sqlalchemy import text

from tests.conftest import RECEIPTS_TOKEN, WRITE_TOKEN
from tests.faults.conftest import RECIPIENTS, Launcher
from tests.support.waiting import wait_until

BATCH = 500


def receipt_status(message_id: int) -> str:
    return "undelivered" if message_id % 7 == 0 else "delivered"


def test_killing_stats_while_receipts_flow_applies_every_receipt_once(faults: Launcher) -> None:
    tokens = f"{WRITE_TOKEN}:write,{RECEIPTS_TOKEN}:receipts"
    run = faults.launch(senders=2, env={"HERALD_API_TOKENS": tokens})
    campaign_id = run.start_campaign()
    assert run.wait_finished(campaign_id)["status"] == "completed"
    with run.engine.connect() as conn:
        ids = list(
            conn.execute(
                text("SELECT id FROM message WHERE campaign_id = :c ORDER BY id"),
                {"c": campaign_id},
            ).scalars()
        )
    assert len(ids) == RECIPIENTS
    half_posted = threading.Event()
    refused: list[int] = []

    def post_receipts() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {RECEIPTS_TOKEN}"
        for n, start in enumerate(range(0, len(ids), BATCH)):
            body = [{"id": i, "status": receipt_status(i)} for i in ids[start : start + BATCH]]
            # Each batch twice: a gateway retrying after a lost answer.
            for _ in range(2):
                response = session.post(
                    f"{run.api_url}/api/v1/receipts/http", json=body, timeout=30
                )
                if response.status_code != 202:
                    refused.append(response.status_code)
            if n == len(ids) // BATCH // 2:
                half_posted.set()

    poster = threading.Thread(target=post_receipts)
    poster.start()
    assert half_posted.wait(timeout=120)
    run.stack.kill("stats")
    run.stack.start("stats")
    poster.join(timeout=300)
    run.stack.restart("stats")

    def settled() -> dict[str, int] | None:
        s = run.stats(campaign_id)
        return s if s and s["delivered"] + s["undelivered"] == RECIPIENTS else None

    final = wait_until(settled, timeout=180)
    with run.engine.connect() as conn:
        stored: dict[int, str] = dict(
            conn.execute(
                text("SELECT id, status FROM message WHERE campaign_id = :c"), {"c": campaign_id}
            ).all()
        )
    assert refused == []
    assert {i: stored[i] for i in ids if stored[i] != receipt_status(i)} == {}
    assert final["undelivered"] == sum(receipt_status(i) == "undelivered" for i in ids)
    assert final["sent"] == RECIPIENTS and final["awaiting_receipt"] == 0
    assert faults.counter_mismatches() == {}
    assert run.exited() == {}
