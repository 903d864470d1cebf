"""RabbitMQ and PostgreSQL go away mid-campaign and come back: every service recovers by itself.

No service is restarted by the test: each must reconnect on its own, and the campaign must
finish with nothing lost and exact counts.
"""

from __future__ import annotations

import time
from collections import Counter

from tests.faults.conftest import RECIPIENTS, FaultRun, Launcher
from tests.faults.oracle import report
from tests.support.waiting import wait_until

# Long enough for every service to hit the outage, short enough to keep the suite quick.
OUTAGE_S = 3.0
# What the services name their broker connections: the API's relay, the scheduler's two,
# the stats writer, and each of the three senders' delivery consumer.
EVERY_CONNECTION = Counter(
    {"outbox-relay": 1, "scheduler": 1, "scheduler-events": 1, "stats": 1, "herald-sender-http": 3}
)


def wait_readiness(run: FaultRun, **expected: str) -> None:
    """Wait until /readyz reports these dependency states."""
    wait_until(lambda: all(run.readiness().get(k) == v for k, v in expected.items()), timeout=60)


def test_rabbitmq_killed_and_restarted_mid_campaign_loses_nothing(faults: Launcher) -> None:
    run = faults.launch(senders=3)
    started = time.monotonic()

    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.3)
    run.broker.kill()
    wait_readiness(run, status="degraded", broker="down")
    time.sleep(OUTAGE_S)
    run.broker.start()
    # Every service finds the broker again by itself: nothing is restarted for it.
    wait_until(lambda: run.broker_connections() >= EVERY_CONNECTION, timeout=60)
    final = run.wait_finished(campaign_id)
    seconds = time.monotonic() - started

    figures = run.figures(campaign_id)
    report(figures.line("restart-rabbitmq", seconds))
    assert final["status"] == "completed"
    assert figures.lost == 0
    assert figures.statuses == {"sent": RECIPIENTS}
    assert figures.delivered_not_sent == 0
    assert figures.stats_mismatches() == {}
    wait_readiness(run, status="ok")
    assert run.exited() == {}


def test_postgresql_crashed_and_restarted_mid_campaign_loses_nothing(faults: Launcher) -> None:
    run = faults.launch(senders=3)
    started = time.monotonic()

    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.3)
    run.postgres.crash()
    wait_readiness(run, status="degraded", database="down")
    time.sleep(OUTAGE_S)
    run.postgres.start()
    final = run.wait_finished(campaign_id)
    seconds = time.monotonic() - started

    figures = run.figures(campaign_id)
    report(figures.line("restart-postgresql", seconds))
    assert final["status"] == "completed"
    assert figures.lost == 0
    assert figures.statuses == {"sent": RECIPIENTS}
    assert figures.delivered_not_sent == 0
    assert figures.stats_mismatches() == {}
    wait_readiness(run, status="ok")
    assert run.exited() == {}
