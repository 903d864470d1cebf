"""HERALD_AMQP_URL lists the nodes of a cluster: parsed once, tried in turn, a lost one last."""

from __future__ import annotations

import pytest
from pika.exceptions import AMQPConnectionError

from shared.config import ConfigError, Settings, split_amqp_urls
from shared.logging import secrets_of
from shared.messaging import connection
from shared.messaging.connection import BrokerNodes, node_name, try_order

pytestmark = pytest.mark.unit

A = "amqp://herald:pw-a@mq-a:5672/herald"
B = "amqp://herald:pw-b@mq-b:5673/herald"
C = "amqps://herald:pw-c@mq-c/herald"


def test_one_url_is_one_node() -> None:
    assert split_amqp_urls("amqp://guest:guest@127.0.0.1:5672/%2F") == (
        "amqp://guest:guest@127.0.0.1:5672/%2F",
    )


def test_several_urls_are_split_on_commas_and_stripped() -> None:
    assert split_amqp_urls(f"{A}, {B} ,{C}") == (A, B, C)


@pytest.mark.parametrize(
    "spec",
    [f"{A},,{B}", f"{A},", "http://mq-a:5672/", "mq-a:5672", "amqp:///herald", ""],
)
def test_a_bad_list_stops_the_service_naming_the_variable(spec: str) -> None:
    with pytest.raises(ConfigError, match="HERALD_AMQP_URL must be amqp:// or amqps:// URLs"):
        Settings.from_env({"HERALD_AMQP_URL": spec})


def test_the_error_never_shows_a_password() -> None:
    with pytest.raises(ConfigError) as caught:
        split_amqp_urls("amqp://herald:hunter2@mq-a/herald,http://herald:hunter3@mq-b/")

    assert "hunter" not in str(caught.value)
    assert "herald:***@mq-b" in str(caught.value)


def test_settings_keep_the_list_and_give_each_node() -> None:
    settings = Settings.from_env({"HERALD_AMQP_URL": f"{A} , {B}"})

    assert settings.amqp_urls == (A, B)


def test_every_nodes_password_is_masked_in_logs() -> None:
    settings = Settings.from_env({"HERALD_AMQP_URL": f"{A},{B},{C}"})

    assert {"pw-a", "pw-b", "pw-c"} <= set(secrets_of(settings))


def test_node_names_carry_host_and_port_never_credentials() -> None:
    assert [node_name(u) for u in (A, B, C)] == ["mq-a:5672", "mq-b:5673", "mq-c:5671"]


@pytest.mark.parametrize(
    ("count", "start", "expected"),
    [(1, 0, [0]), (3, 0, [0, 1, 2]), (3, 1, [1, 2, 0]), (3, 2, [2, 0, 1])],
)
def test_nodes_are_tried_in_turn_from_the_start(
    count: int, start: int, expected: list[int]
) -> None:
    assert try_order(count, start) == expected


class Nodes:
    """Stands in for the broker: which URLs answer, and every attempt made."""

    def __init__(self, down: set[str]) -> None:
        self.down = down
        self.attempts: list[str] = []

    def open(self, url: str, name: str) -> str:
        self.attempts.append(url)
        if url in self.down:
            raise AMQPConnectionError(f"{node_name(url)} refused")
        return url


def reached(cluster: BrokerNodes) -> object:
    """The URL the stand-in returned for the connection."""
    return cluster.connect("test")


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch) -> Nodes:
    fake = Nodes(down=set())
    monkeypatch.setattr(connection, "open_connection", fake.open)
    return fake


def test_a_dead_first_node_is_passed_over(nodes: Nodes) -> None:
    nodes.down = {A}

    connected = reached(BrokerNodes(f"{A},{B},{C}"))

    assert connected == B
    assert nodes.attempts == [A, B]


def test_a_reconnect_starts_after_the_node_that_was_lost(nodes: Nodes) -> None:
    cluster = BrokerNodes(f"{A},{B},{C}")
    assert reached(cluster) == A

    nodes.down = {A}
    nodes.attempts.clear()
    reconnected = reached(cluster)

    # The lost node is not tried first: the next one is.
    assert reconnected == B
    assert nodes.attempts == [B]


def test_the_rotation_wraps_round_to_the_first_node(nodes: Nodes) -> None:
    cluster = BrokerNodes(f"{A},{B},{C}")
    nodes.down = {A, B}
    assert reached(cluster) == C

    nodes.down = {C}
    nodes.attempts.clear()

    assert reached(cluster) == A
    assert nodes.attempts == [A]


def test_with_every_node_down_the_last_error_is_raised(nodes: Nodes) -> None:
    nodes.down = {A, B, C}

    with pytest.raises(AMQPConnectionError, match="mq-c:5671 refused"):
        reached(BrokerNodes(f"{A},{B},{C}"))

    assert nodes.attempts == [A, B, C]


def test_one_shot_connect_tries_the_list_in_order(nodes: Nodes) -> None:
    nodes.down = {A, B}

    one_shot: object = connection.connect(f"{A},{B},{C}", "test")

    assert one_shot == C
