"""RabbitMQ and PostgreSQL go away mid-campaign and come back: every service recovers by itself.

No service is restarted by the test: each must reconnect on its own, and the campaign must
finish with nothing lost and exact counts.
"""

from __future__ import annotations

import time
from collections import Counter

from shared.config import Settings
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
# `rabbitmqctl stop_app; sleep 5; start_app`, as an operator restarting the broker would.
APP_STOPPED_S = 5.0
# The scheduler's own defaults instead of the suite's small queue cap: the whole campaign
# is in the broker at once, so each sender holds its full prefetch when the broker goes.
QUEUE_DEFAULTS = {"HERALD_MAX_QUEUED_PER_CAMPAIGN": "20000", "HERALD_RELEASE_PER_TICK": "10000"}
# A gateway that takes two seconds per request keeps every delivery slot of both senders busy
# (the worst case for the bound) and the campaign going for longer than rabbitmqctl may take
# to stop the broker on a busy machine.
GATEWAY_DELAY_MS = 2000.0


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
    assert figures.short_of_all_sent(RECIPIENTS) == {}
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
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    wait_readiness(run, status="ok")
    assert run.exited() == {}


def test_rabbitmq_app_restarted_early_resends_at_most_what_each_sender_had_delivered_unreported(
    faults: Launcher,
) -> None:
    # Two senders as `make run` starts them, with the default prefetch (50 batches of 100)
    # and 1,000 deliveries in flight each.
    run = faults.launch(senders=2, env=QUEUE_DEFAULTS, delay_ms=GATEWAY_DELAY_MS)
    settings = Settings.from_env(run.env)
    started = time.monotonic()

    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.05)
    run.broker.ctl("stop_app")
    delivered_when_stopped = run.gateway.stats()["distinct_ids"]
    time.sleep(APP_STOPPED_S)
    run.broker.ctl("start_app")
    final = run.wait_finished(campaign_id)
    seconds = time.monotonic() - started

    figures = run.figures(campaign_id)
    # A sender that loses its channel sends nothing more of the batches it held; another
    # sender may send again what it had delivered without a confirmed outcome, which is
    # never more than its in-flight limit.
    bound = settings.sender_concurrency * run.stack.senders
    report(figures.line("stop-start-rabbitmq-app (2 senders, defaults)", seconds, bound))
    print(f"broker stopped with {delivered_when_stopped} of {RECIPIENTS} delivered")
    assert delivered_when_stopped < RECIPIENTS, "the broker stopped after the campaign was sent"
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound
    assert run.exited() == {}
