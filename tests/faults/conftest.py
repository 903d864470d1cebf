"""The stack as processes on a private RabbitMQ node and PostgreSQL cluster, one scenario at a time.

Each scenario gets a fresh database (a copy of a template holding 20,000 clients), a fresh
vhost, its own in-process gateway, and api + scheduler + senders + stats as processes.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text

from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from tests.conftest import WRITE_TOKEN
from tests.faults.oracle import REPORT, Figures, measure
from tests.support.campaign_driver import CampaignDriver
from tests.support.factories import make_clients
from tests.support.private_services import (  # noqa: F401 - session fixtures
    PrivateBroker,
    PrivatePostgres,
    private_broker,
    private_postgres,
)
from tests.support.processes import free_port, free_port_block
from tests.support.progress import mismatches_in

RECIPIENTS = 20_000
TAGS = ("news", "promo", "vip", "sport")
TEMPLATE_DATABASE = "herald_faults_template"
GATEWAY_TOKEN = "faults-gateway-token"
BASE_ENV = {
    "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
    "HERALD_TICK_INTERVAL_S": "0.1",
    "HERALD_RETRY_DELAYS_MS": "500,1000,2000",
    # A cap well under the campaign size keeps the scheduler releasing all along, so a
    # fault in the middle of the campaign also hits the scheduler's claim and publish.
    "HERALD_MAX_QUEUED_PER_CAMPAIGN": "4000",
    "HERALD_RELEASE_PER_TICK": "1000",
}


@pytest.fixture(scope="session")
def template_database(private_postgres: PrivatePostgres) -> str:  # noqa: F811
    """A migrated database with 20,000 clients, a quarter on each tag, copied per scenario."""
    url = private_postgres.create_database(TEMPLATE_DATABASE)
    upgrade(url)
    engine = make_engine(url)
    share = RECIPIENTS // len(TAGS)
    for i, tag in enumerate(TAGS):
        make_clients(engine, share, tags=[tag], first_phone=79000000000 + i * share)
    engine.dispose()
    return TEMPLATE_DATABASE


@dataclass
class FaultRun(CampaignDriver):
    """One scenario's running stack and what the test needs to drive and check it."""

    stack: Stack
    gateway: GatewayServer
    engine: Engine
    api_url: str
    broker: PrivateBroker
    postgres: PrivatePostgres
    env: dict[str, str]
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.headers["Authorization"] = f"Bearer {WRITE_TOKEN}"

    def diagnosis(self, campaign_id: int) -> str:
        """Where the campaign's messages are: statuses, queue depths, dead services."""
        with self.engine.connect() as conn:
            statuses = conn.execute(
                text("SELECT status, count(*) FROM message WHERE campaign_id = :c GROUP BY 1"),
                {"c": campaign_id},
            ).all()
        vhost = self.env["HERALD_AMQP_URL"].rsplit("/", 1)[1]
        queues = self.broker.ctl(
            "list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged"
        )
        return (
            f"stats: {self.stats(campaign_id)}\nmessages: {dict(statuses)}\n"
            f"queues (ready, unacked):\n{queues}exited: {self.exited()}"
        )

    def figures(self, campaign_id: int, max_attempts: int = 0) -> Figures:
        stats = self.stats(campaign_id)
        assert stats is not None, "the stats endpoint did not answer"
        return measure(self.engine, campaign_id, self.gateway, stats, max_attempts)

    def broker_connections(self) -> Counter[str]:
        """Connections to this scenario's vhost, counted by the name each service gives."""
        vhost = self.env["HERALD_AMQP_URL"].rsplit("/", 1)[1]
        listing = self.broker.ctl(
            "list_connections", "--formatter", "json", "vhost", "client_properties"
        )
        names: Counter[str] = Counter()
        for connection in json.loads(listing or "[]"):
            if connection["vhost"] == vhost:
                props = {key: value for key, _, value in connection["client_properties"]}
                names[str(props.get("connection_name"))] += 1
        return names

    def outbox_unpublished(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")))

    def exited(self) -> dict[str, int | None]:
        """Services that are not running, with their exit codes (None: never started)."""
        return {
            name: s.process.returncode if s.process is not None else None
            for name, s in self.stack.services.items()
            if s.process is None or s.process.poll() is not None
        }


class Launcher:
    """Starts one scenario's stack; everything it started is stopped after the test."""

    def __init__(
        self, broker: PrivateBroker, postgres: PrivatePostgres, template: str, log_dir: Path
    ) -> None:
        self.broker = broker
        self.postgres = postgres
        self.template = template
        self.log_dir = log_dir
        self.runs: list[FaultRun] = []

    def launch(
        self, senders: int = 3, env: dict[str, str] | None = None, **gateway: Any
    ) -> FaultRun:
        suffix = secrets.token_hex(4)
        database_url = self.postgres.create_database(f"faults_{suffix}", self.template)
        amqp_url = self.broker.fresh_vhost(f"faults_{suffix}")
        gateway_server = GatewayServer(
            token=GATEWAY_TOKEN, record_bodies=False, seed=7, **gateway
        ).start()
        api_port = free_port()
        full_env = {
            **BASE_ENV,
            "HERALD_DATABASE_URL": database_url,
            "HERALD_AMQP_URL": amqp_url,
            "HERALD_API_PORT": str(api_port),
            "HERALD_GATEWAY_URL": gateway_server.url,
            "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
            **(env or {}),
        }
        stack = Stack(
            env=full_env,
            senders=senders,
            log_dir=self.log_dir,
            metrics_base=free_port_block(16, first=31000),
        )
        run = FaultRun(
            stack=stack,
            gateway=gateway_server,
            engine=make_engine(database_url),
            api_url=f"http://127.0.0.1:{api_port}",
            broker=self.broker,
            postgres=self.postgres,
            env=full_env,
        )
        self.runs.append(run)
        stack.start()
        stack.wait_ready(run.api_url)
        return run

    def close(self) -> None:
        for run in self.runs:
            run.stack.stop()
            run.gateway.stop()
            run.engine.dispose()

    def counter_mismatches(self) -> dict[str, Any]:
        """Campaigns whose progress counters differ from count(*) by status, in every run."""
        return mismatches_in(run.engine for run in self.runs)
        for log in sorted(self.log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def faults(
    private_broker: PrivateBroker,  # noqa: F811
    private_postgres: PrivatePostgres,  # noqa: F811
    template_database: str,
    tmp_path: Path,
) -> Iterator[Launcher]:
    launcher = Launcher(private_broker, private_postgres, template_database, tmp_path / "logs")
    try:
        yield launcher
    finally:
        launcher.close()
        # A scenario that stopped the broker or the database leaves them running again.
        if not private_broker.is_running:
            private_broker.start()
        if not (private_postgres.data_dir / "postmaster.pid").exists():
            private_postgres.start()
    # Whatever the fault, the counters the stats endpoint shows equal the message rows.
    assert launcher.counter_mismatches() == {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("fault injection")
        for line in REPORT:
            terminalreporter.write_line(line)
