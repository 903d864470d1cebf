"""Herald across three test hosts on a three-node RabbitMQ cluster of the session's own.

Host `a` runs two senders, host `b` one, host `c` the api, the scheduler and stats; each is a
network namespace linked to a bridge on this machine (tests/support/netns.py). The three
RabbitMQ nodes, PostgreSQL and the gateway run on the machine and listen on its bridge
address: every service reaches them over its host's link, with the list of the three
nodes in HERALD_AMQP_URL. The machine's own broker and database are never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text

from sandbox.gateway import GatewayServer
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from tests.conftest import WRITE_TOKEN
from tests.faults.oracle import REPORT, Figures, measure
from tests.support.campaign_driver import CampaignDriver
from tests.support.factories import make_clients
from tests.support.netns import Host, Network
from tests.support.private_services import (
    POSTGRES_BIN,
    RABBITMQ_BIN,
    PrivateBroker,
    PrivatePostgres,
    _scratch_dir,
    running_postgres,
)
from tests.support.progress import mismatches_in
from tests.support.waiting import wait_until

RECIPIENTS = 20_000
TEMPLATE_DATABASE = "herald_cluster_template"
GATEWAY_TOKEN = "cluster-gateway-token"
HOSTS = ("a", "b", "c")
# Host -> the services it runs: (label, module, metrics port on that host).
PLACEMENT: dict[str, list[tuple[str, str, int | None]]] = {
    "a": [("sender-1", "services.sender", 9110), ("sender-2", "services.sender", 9111)],
    "b": [("sender-3", "services.sender", 9110)],
    "c": [
        ("api", "services.api", None),
        ("scheduler", "services.scheduler", 9100),
        ("stats", "services.stats", 9101),
    ],
}
SENDERS = sum(1 for services in PLACEMENT.values() for _, m, _ in services if m.endswith("sender"))
API_PORT = 8000  # on host c, whose ports are its own
BASE_ENV = {
    "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
    "HERALD_DEV_STACK": "1",
    "HERALD_TICK_INTERVAL_S": "0.1",
    "HERALD_RETRY_DELAYS_MS": "500,1000,2000",
    "HERALD_SENDER_CHANNELS": "http",
    # Released all along, so a fault mid-campaign also hits the scheduler's claim and publish.
    "HERALD_MAX_QUEUED_PER_CAMPAIGN": "4000",
    "HERALD_RELEASE_PER_TICK": "1000",
    "HERALD_LOG_LEVEL": "INFO",
}
# Every service's broker connections, by the name it gives them.
EVERY_CONNECTION = Counter(
    {
        "outbox-relay": 1,
        "scheduler": 1,
        "scheduler-events": 1,
        "stats": 1,
        "herald-sender-http": SENDERS,
    }
)


def _require_root_tools() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the cluster tests make network namespaces: they need root and iproute2")
    if not (RABBITMQ_BIN / "rabbitmq-server").exists() or not (POSTGRES_BIN / "initdb").exists():
        pytest.fail("the cluster tests need Debian's rabbitmq-server and PostgreSQL 15")


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    _require_root_tools()
    net = Network()
    try:
        net.create(list(HOSTS))
        yield net
    finally:
        net.remove()


@dataclass
class Cluster:
    """Three RabbitMQ nodes, clustered, sharing a cookie, listening on loopback and the bridge."""

    nodes: list[PrivateBroker]

    def alive(self) -> PrivateBroker:
        return next(node for node in self.nodes if node.is_running)

    def by_name(self, nodename: str) -> PrivateBroker:
        return next(node for node in self.nodes if node.nodename == nodename)

    def ctl(self, *args: str) -> str:
        return self.alive().ctl(*args)

    def queues(self, vhost: str) -> dict[str, dict[str, Any]]:
        """Each queue of the vhost: its type, leader and members (quorum queues)."""
        listing = self.ctl(
            "list_queues", "-p", vhost, "name", "type", "leader", "members", "--formatter", "json"
        )
        return {q["name"]: q for q in json.loads(listing or "[]")}

    def start_again(self) -> None:
        """Start every node that is down, and wait until all three are in the cluster."""
        for node in self.nodes:
            if not node.is_running:
                node.start()
        wait_until(lambda: len(self.running_nodes()) == len(self.nodes), timeout=120)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU each node has spent so far: every process of its process group (beam included)."""
        ticks = os.sysconf("SC_CLK_TCK")
        spent = {node.nodename: 0.0 for node in self.nodes}
        groups = {
            node.process.pid: node.nodename
            for node in self.nodes
            if node.is_running and node.process
        }
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            name = groups.get(int(fields[2]))  # the process group
            if name is not None:
                spent[name] += (int(fields[11]) + int(fields[12])) / ticks
        return spent

    def running_nodes(self) -> list[str]:
        status = json.loads(self.ctl("cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))


@pytest.fixture(scope="session")
def cluster(network: Network) -> Iterator[Cluster]:
    base = _scratch_dir("herald-cluster-rabbitmq-")
    cookie = secrets.token_hex(16)
    tag = secrets.token_hex(3)
    nodes = [
        PrivateBroker(
            base / f"node{i}",
            nodename=f"herald-cluster-{tag}-{i}@localhost",
            cookie=cookie,
            addresses=("127.0.0.1", network.gateway_address),
        )
        for i in (1, 2, 3)
    ]
    try:
        for node in nodes:
            node.start()
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].nodename)
            node.ctl("start_app")
        made = Cluster(nodes)
        assert sorted(made.running_nodes()) == sorted(n.nodename for n in nodes)
        yield made
    finally:
        for node in nodes:
            node.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster_postgres(network: Network) -> Iterator[PrivatePostgres]:
    with running_postgres(
        "herald-cluster-postgres-",
        addresses=("127.0.0.1", network.gateway_address),
        trusted_network=str(network.subnet),
    ) as postgres:
        yield postgres


@pytest.fixture(scope="session")
def cluster_template(cluster_postgres: PrivatePostgres) -> str:
    url = cluster_postgres.create_database(TEMPLATE_DATABASE)
    upgrade(url)
    engine = make_engine(url)
    make_clients(engine, RECIPIENTS, tags=["news"], first_phone=79000000000)
    engine.dispose()
    return TEMPLATE_DATABASE


@dataclass
class ClusterRun(CampaignDriver):
    """One scenario: a fresh database and vhost, the gateway, the services on their hosts."""

    network: Network
    cluster: Cluster
    postgres: PrivatePostgres
    gateway: GatewayServer
    engine: Engine
    vhost: str
    env: dict[str, str]
    log_dir: Path
    api_url: str  # the api on host c
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.headers["Authorization"] = f"Bearer {WRITE_TOKEN}"

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def start_services(self) -> None:
        for host_name, services in PLACEMENT.items():
            for label, module, metrics_port in services:
                env = dict(self.env)
                if metrics_port is not None:
                    env["HERALD_METRICS_PORT"] = str(metrics_port)
                self.host(host_name).run(label, module, env, self.log_dir)
        wait_until(lambda: self.readiness().get("status") == "ok", timeout=90, interval=0.5)

    def stop_services(self) -> None:
        for host in self.network.hosts.values():
            host.stop_all()
            host.processes.clear()

    def diagnosis(self, campaign_id: int) -> str:
        with self.engine.connect() as conn:
            statuses = conn.execute(
                text("SELECT status, count(*) FROM message WHERE campaign_id = :c GROUP BY 1"),
                {"c": campaign_id},
            ).all()
        return (
            f"stats: {self.stats(campaign_id)}\nmessages: {dict(statuses)}\n"
            f"queues: {self.cluster.queues(self.vhost)}\nexited: {self.exited()}"
        )

    def figures(self, campaign_id: int) -> Figures:
        stats = self.stats(campaign_id)
        assert stats is not None, "the stats endpoint did not answer"
        return measure(self.engine, campaign_id, self.gateway, stats)

    def broker_connections(self) -> Counter[str]:
        listing = self.cluster.ctl(
            "list_connections", "--formatter", "json", "vhost", "client_properties"
        )
        names: Counter[str] = Counter()
        for connection in json.loads(listing or "[]"):
            if connection["vhost"] == self.vhost:
                props = {key: value for key, _, value in connection["client_properties"]}
                names[str(props.get("connection_name"))] += 1
        return names

    def exited(self) -> dict[str, int | None]:
        return {
            f"{name}/{label}": code
            for name, host in self.network.hosts.items()
            for label, code in host.exited().items()
        }


class ClusterLauncher:
    def __init__(
        self,
        network: Network,
        cluster: Cluster,
        postgres: PrivatePostgres,
        template: str,
        log_dir: Path,
    ) -> None:
        self.network = network
        self.cluster = cluster
        self.postgres = postgres
        self.template = template
        self.log_dir = log_dir
        self.runs: list[ClusterRun] = []

    def launch(self, env: dict[str, str] | None = None) -> ClusterRun:
        suffix = secrets.token_hex(4)
        database = f"cluster_{suffix}"
        self.postgres.create_database(database, self.template)
        vhost = f"cluster_{suffix}"
        self.cluster.ctl("add_vhost", vhost)
        self.cluster.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        shared = self.network.gateway_address
        gateway = GatewayServer(
            host=shared, token=GATEWAY_TOKEN, record_bodies=False, seed=7
        ).start()
        full_env = {
            **BASE_ENV,
            "HERALD_DATABASE_URL": self.postgres.url(database, host=shared),
            "HERALD_AMQP_URL": ",".join(n.amqp_url(vhost, host=shared) for n in self.cluster.nodes),
            "HERALD_API_HOST": "0.0.0.0",  # noqa: S104 - host c's namespace: its link only
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_GATEWAY_URL": gateway.url,
            "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
            **(env or {}),
        }
        run = ClusterRun(
            network=self.network,
            cluster=self.cluster,
            postgres=self.postgres,
            gateway=gateway,
            engine=make_engine(self.postgres.url(database)),
            vhost=vhost,
            env=full_env,
            log_dir=self.log_dir,
            api_url=f"http://{self.network.hosts['c'].address}:{API_PORT}",
        )
        self.runs.append(run)
        run.start_services()
        return run

    def close(self) -> None:
        for run in self.runs:
            run.stop_services()
            run.gateway.stop()

    def counter_mismatches(self) -> dict[str, Any]:
        """Campaigns whose progress counters differ from count(*) by status, in every run."""
        return mismatches_in(run.engine for run in self.runs)


@pytest.fixture
def on_cluster(
    network: Network,
    cluster: Cluster,
    cluster_postgres: PrivatePostgres,
    cluster_template: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[ClusterLauncher]:
    launcher = ClusterLauncher(
        network, cluster, cluster_postgres, cluster_template, tmp_path / "logs"
    )
    try:
        yield launcher
    finally:
        launcher.close()
        for host in network.hosts.values():
            host.restore()
        cluster.start_again()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for log in sorted((tmp_path / "logs").glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
    assert launcher.counter_mismatches() == {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("cluster faults")
        for line in REPORT:
            terminalreporter.write_line(line)


def wait_connected(run: ClusterRun, timeout: float = 90) -> None:
    """Every service holds its broker connections again (on whichever nodes are up)."""
    wait_until(lambda: run.broker_connections() >= EVERY_CONNECTION, timeout=timeout)


def elapsed(started: float) -> float:
    return time.monotonic() - started
