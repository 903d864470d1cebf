"""RabbitMQ down: the API still takes campaigns; once it is back the outbox drains and they run."""

from __future__ import annotations

from tests.faults.conftest import RECIPIENTS, TAGS, Launcher
from tests.support.waiting import wait_until

PER_TAG = RECIPIENTS // len(TAGS)


def test_campaigns_accepted_while_rabbitmq_is_down_run_once_it_is_back(faults: Launcher) -> None:
    run = faults.launch(senders=2)
    run.broker.stop()
    degraded = wait_until(
        lambda: (r := run.readiness())["http_status"] == 503 and r["broker"] == "down" and r,
        timeout=60,
    )

    responses = [run.create_campaign(tags=(tag,)) for tag in ("promo", "vip")]
    accepted = [r.status_code for r in responses]
    waiting_events = run.outbox_unpublished()
    run.broker.start()
    finals = [run.wait_finished(r.json()["id"]) for r in responses]

    assert degraded["status"] == "degraded" and degraded["database"] == "ok"
    assert accepted == [201, 201]
    assert waiting_events == 2
    wait_until(lambda: run.outbox_unpublished() == 0, timeout=60)
    for final in finals:
        assert (final["status"], final["total"], final["sent"]) == ("completed", PER_TAG, PER_TAG)
    gateway = run.gateway.stats()
    assert gateway["distinct_ids"] == 2 * PER_TAG
    wait_until(lambda: run.readiness()["http_status"] == 200, timeout=60)
    assert run.exited() == {}
