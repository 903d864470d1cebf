"""A campaign's rate limit holds across processes: two schedulers, three senders, one gateway."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.engine import make_engine
from shared.db.migrate import rebuild
from tests.conftest import random_suffix, reset_vhost
from tests.support.factories import make_campaign, make_clients
from tests.support.waiting import wait_until

# Names of their own: concurrent runs of this module must not share a database or a vhost.
SUFFIX = random_suffix()
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/herald_sched_rate_{SUFFIX}"
VHOST = f"herald_sched_rate_{SUFFIX}"
GATEWAY_TOKEN = "rate-gateway-token"
RATE = 100  # messages per second
SPAN_S = 30.0
WARM_UP_S = 5.0


def drop_database(url: str) -> None:
    admin_url = make_url(url).set(drivername="postgresql+psycopg2", database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def database() -> Iterator[Engine]:
    rebuild(DATABASE_URL)
    engine = make_engine(DATABASE_URL)
    yield engine
    engine.dispose()
    drop_database(DATABASE_URL)


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer(token=GATEWAY_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(database, gateway, tmp_path_factory) -> Iterator[Stack]:
    """Two schedulers, three senders and stats as processes; no API, no metrics ports."""
    reset_vhost(VHOST)
    env = {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_GATEWAY_URL": gateway.url,
        "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
        "HERALD_SENDER_CHANNELS": "http",
        "HERALD_LOG_LEVEL": "WARNING",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    processes = Stack(env=env, senders=3, log_dir=log_dir)
    processes.add("scheduler-2", "services.scheduler", {})
    del processes.services["api"]
    for service in processes.services.values():
        service.env["HERALD_METRICS_PORT"] = "0"
    processes.start()
    try:
        yield processes
    finally:
        processes.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-2000:]}")


@pytest.mark.slow
def test_three_senders_deliver_at_the_campaign_rate(database, gateway, stack):
    recipients = int(RATE * (SPAN_S + 2 * WARM_UP_S + 5))
    make_clients(database, recipients)
    make_campaign(database, rate_limit=RATE)  # starts now; the schedulers pick it up

    def delivered_times() -> list[float]:
        return sorted(
            r.at_monotonic for r in gateway.recorder.requests() if r.outcome == "delivered"
        )

    first = wait_until(lambda: delivered_times()[:1], timeout=30)[0]
    start, end = first + WARM_UP_S, first + WARM_UP_S + SPAN_S
    times = wait_until(
        lambda: (t := delivered_times()) and (t[-1] > end or len(t) >= recipients) and t,
        timeout=90,
    )

    in_span = sum(1 for t in times if start <= t < end)
    rate = in_span / SPAN_S
    assert abs(rate - RATE) <= 0.1 * RATE, f"{rate:.1f} messages/s against a limit of {RATE}"
    assert all(p.poll() is None for p in stack.processes())
