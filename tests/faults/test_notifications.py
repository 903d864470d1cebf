"""Notifications across faults: accepted while RabbitMQ is down, and flowing while the
scheduler and a sender are killed beside a running campaign. None is lost."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

from sqlalchemy import text

from shared.config import Settings
from tests.faults.conftest import FaultRun, Launcher
from tests.faults.oracle import report
from tests.support.processes import Every
from tests.support.progress import notification_count_mismatches
from tests.support.waiting import wait_until

BATCH = 500


def post_batch(run: FaultRun, count: int, first_phone: int) -> list[int]:
    """Accept `count` notifications in one request; returns their ids (every one accepted)."""
    body = [
        {
            "channel": "http",
            "to": {"phone": f"+{first_phone + i}"},
            "text": f"Code {i}",
            "idempotency_key": secrets.token_hex(8),
        }
        for i in range(count)
    ]
    response = run.http.post(f"{run.api_url}/api/v1/notifications", json=body, timeout=60)
    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert all("id" in item for item in items), items
    return [int(item["id"]) for item in items]


def statuses(run: FaultRun, ids: list[int]) -> Counter[str]:
    with run.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status FROM notification WHERE id = ANY(:ids)"), {"ids": ids}
        ).scalars()
        return Counter(rows)


def assert_all_sent_once_recorded(run: FaultRun, ids: list[int]) -> int:
    """Every notification sent and received by the gateway; returns the duplicates seen."""
    wait_until(lambda: statuses(run, ids) == Counter({"sent": len(ids)}), timeout=120)
    received = {i: run.gateway.delivery_count(i) for i in ids}
    assert [i for i, n in received.items() if n == 0] == []
    with run.engine.connect() as conn:
        assert notification_count_mismatches(conn) == {}
    return sum(n - 1 for n in received.values())


def test_notifications_accepted_while_rabbitmq_is_down_are_sent_once_it_is_back(
    faults: Launcher,
) -> None:
    run = faults.launch(senders=2)
    run.broker.stop()
    wait_until(lambda: run.readiness()["http_status"] == 503, timeout=60)

    ids = post_batch(run, BATCH, 79500000000) + post_batch(run, BATCH, 79510000000)
    waiting = statuses(run, ids)
    run.broker.start()
    duplicates = assert_all_sent_once_recorded(run, ids)

    report(f"FAULT notifications-broker-down: notifications={len(ids)} lost=0 dups={duplicates}")
    assert waiting == Counter({"queued": len(ids)})
    assert duplicates == 0
    assert run.exited() == {}


def test_killing_the_scheduler_and_a_sender_while_notifications_flow_loses_none(
    faults: Launcher,
) -> None:
    run = faults.launch(senders=3)
    campaign_id = run.start_campaign(tags=("promo",))
    run.wait_share_final(campaign_id, 0.05)
    settings = Settings.from_env(run.env)
    ids: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep_posting() -> None:
        phone = 79600000000
        try:
            while not stop.is_set():
                ids.extend(post_batch(run, 100, phone))
                phone += 100
                time.sleep(0.2)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            errors.append(exc)

    poster = threading.Thread(target=keep_posting, daemon=True)
    poster.start()
    started = time.monotonic()
    kills = iter(("scheduler", "sender-1", "scheduler"))
    with Every(2.0, lambda: run.stack.restart(next(kills, "sender-2"))) as restarts:
        time.sleep(7.0)
    stop.set()
    poster.join(timeout=60)
    duplicates = assert_all_sent_once_recorded(run, ids)
    final = run.wait_finished(campaign_id)

    report(
        f"FAULT notifications-kills (restarts={restarts.runs}): notifications={len(ids)} "
        f"lost=0 dups={duplicates} in {time.monotonic() - started:.1f}s"
    )
    assert errors == []
    assert restarts.runs >= 2
    assert final["status"] == "completed"
    # A killed sender's unacked notification batches go to another, which may send them again.
    assert duplicates <= settings.sender_prefetch * settings.batch_size * restarts.runs
    assert run.exited() == {}
