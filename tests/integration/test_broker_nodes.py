"""HERALD_AMQP_URL lists several nodes: a service whose first node is dead works on the next."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.broker import reset_vhost
from shared.config import Settings
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch, DeliveryItem
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import DELIVERIES_EXCHANGE, declare_all
from tests.conftest import TEST_VHOST
from tests.support.fake_gateway import FakeGateway
from tests.support.processes import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
VHOST = f"{TEST_VHOST}-nodes"


@pytest.fixture(scope="module")
def nodes(settings: Settings) -> str:
    """A dead node first (a port nothing listens on), the machine's broker second."""
    reset_vhost(VHOST)
    live = settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{VHOST}"
    return f"{dead},{live}"


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as server:
        yield server
        server.stop()


def test_the_cli_connects_past_a_dead_first_node(nodes: str) -> None:
    connection = connect(nodes, "test-nodes")

    assert connection.is_open
    connection.close()


def test_a_sender_whose_first_node_is_dead_delivers_through_the_next(
    nodes: str, settings: Settings, gateway: FakeGateway, tmp_path: Path
) -> None:
    log = tmp_path / "sender.log"
    env = {
        **os.environ,
        **gateway.env(),
        "HERALD_AMQP_URL": nodes,
        "HERALD_DEV_STACK": "1",
        "HERALD_SENDER_CHANNELS": "http",
    }
    with log.open("wb") as out:
        sender = subprocess.Popen(
            [sys.executable, "-m", "services.sender"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        connection = connect(nodes, "test-nodes-publisher")
        channel = connection.channel()
        declare_all(channel, settings.retry_delays_ms)
        valid_until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp()
        items = tuple(DeliveryItem(i, "+79123456789", "hi", 1, valid_until) for i in (11, 12))
        ConfirmingPublisher(channel).publish(
            DELIVERIES_EXCHANGE, "http", DeliveryBatch(1, "http", items).encode(), {}
        )
        connection.close()

        wait_until(
            lambda: gateway.request_count(11) == 1 and gateway.request_count(12) == 1, timeout=60
        )
    finally:
        sender.terminate()
        sender.wait(timeout=30)

    lines = log.read_text()
    dead_node = nodes.split(",")[0].split("@")[1].split("/")[0]
    assert f"node {dead_node} unavailable" in lines
    assert "connected to node 127.0.0.1:5672" in lines
    assert "guest:guest" not in lines
