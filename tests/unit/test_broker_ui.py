"""The broker UI's pure parts: which broker is local, what runs, what to enable, the lines."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.broker_ui import (
    PLUGINS,
    active_plugins,
    describe,
    ensure_plugins,
    exposed_listeners,
    is_local,
    plugins_to_enable,
)


def status(active: list[str], http_interface: str = "[::]") -> dict[str, Any]:
    """The parts of `rabbitmqctl status --formatter=json` that are read."""
    listeners = [
        {"interface": "127.0.0.1", "port": 25672, "protocol": "clustering"},
        {"interface": "127.0.0.1", "port": 5672, "protocol": "amqp"},
        {"interface": http_interface, "port": 15672, "protocol": "http"},
        {"interface": http_interface, "port": 15692, "protocol": "http/prometheus"},
    ]
    return {"active_plugins": active, "listeners": listeners, "rabbitmq_version": "3.10.8"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", True),
        ("amqp://guest:guest@localhost:5672/herald", True),
        ("amqp://u:p@127.0.0.2/herald", True),
        ("amqp://u:p@[::1]:5672/herald", True),
        ("amqp://u:p@rabbitmq:5672/herald", False),
        ("amqp://u:p@10.0.0.5:5672/herald", False),
    ],
)
def test_only_a_loopback_broker_is_local(url: str, expected: bool) -> None:
    assert is_local(url) is expected


def test_the_running_plugins_are_read_from_the_node_status() -> None:
    running = status(["rabbitmq_prometheus", "prometheus", "accept"])

    assert active_plugins(running) == {"rabbitmq_prometheus", "prometheus", "accept"}


@pytest.mark.parametrize(
    ("active", "expected"),
    [
        (set(), ["rabbitmq_management", "rabbitmq_prometheus"]),
        ({"rabbitmq_management", "rabbitmq_management_agent"}, ["rabbitmq_prometheus"]),
        ({"rabbitmq_prometheus", "rabbitmq_shovel"}, ["rabbitmq_management"]),
        ({"rabbitmq_management", "rabbitmq_prometheus"}, []),
    ],
)
def test_only_the_plugins_not_yet_running_are_enabled(
    active: set[str], expected: list[str]
) -> None:
    assert plugins_to_enable(active) == expected


def test_http_listeners_beyond_loopback_are_reported() -> None:
    everywhere = status(list(PLUGINS), http_interface="[::]")
    loopback = status(list(PLUGINS), http_interface="127.0.0.1")

    assert exposed_listeners(everywhere) == ["[::]:15672", "[::]:15692"]
    assert exposed_listeners(loopback) == []


def test_the_lines_give_the_ui_the_guest_login_and_the_broker_metrics() -> None:
    lines = describe("amqp://guest:guest@127.0.0.1:5672/%2F")

    assert lines == [
        "  broker   http://127.0.0.1:15672/ "
        "(RabbitMQ management; log in as guest/guest, from loopback only)",
        "           http://127.0.0.1:15692/metrics (rabbitmq)",
    ]


def test_another_user_is_named_but_its_password_is_never_printed() -> None:
    lines = describe("amqp://herald%2Dops:s3cret-pw@localhost:5672/herald")

    text = "\n".join(lines)
    assert "log in as herald-ops" in text
    assert "http://localhost:15672/" in text
    assert "s3cret" not in text


def test_a_broker_elsewhere_is_left_alone() -> None:
    assert ensure_plugins("amqp://guest:guest@rabbitmq.example.test:5672/%2F") == []


def test_each_node_of_a_cluster_gets_its_ui_and_metrics_lines() -> None:
    lines = describe("amqp://herald:pw@mq-a:5672/herald,amqp://herald:pw@mq-b:5672/herald")

    assert "http://mq-a:15672/" in lines[0]
    assert lines[1] == "           http://mq-a:15692/metrics (rabbitmq)"
    assert lines[2].startswith("           http://mq-b:15672/ (RabbitMQ management")
    assert lines[3] == "           http://mq-b:15692/metrics (rabbitmq)"


def test_a_cluster_is_left_alone_even_on_loopback() -> None:
    nodes = "amqp://guest:guest@127.0.0.1:5672/%2F,amqp://guest:guest@127.0.0.1:5673/%2F"

    assert ensure_plugins(nodes) == []
