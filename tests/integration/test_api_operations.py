"""GET /operations on the real database and broker: totals, campaigns by status, the parked
messages, and each sender's breakers as they travel sender -> RabbitMQ -> stats -> API."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.sender.health import HealthReporter
from services.stats.aggregator import Aggregator
from shared.config import Settings
from shared.db.queries.sender_health import record_sender_health
from shared.messaging.connection import connect
from shared.messaging.consumer import Delivery
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import DEAD_EXCHANGE, OUTCOMES_QUEUE, declare_all
from tests.conftest import READ_TOKEN
from tests.support.factories import make_campaign

READ = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture
def topology(broker: str, settings: Settings) -> str:
    connection = connect(broker, "test-operations")
    channel = connection.channel()
    declare_all(channel, settings.retry_delays_ms)
    channel.queue_purge("deliver.dead")
    channel.queue_purge(OUTCOMES_QUEUE)
    connection.close()
    return broker


@pytest.fixture
def api(settings: Settings, engine: Engine, topology: str) -> FlaskClient:
    return create_app(settings, engine).test_client()


def next_delivery(channel: Any) -> Delivery:
    """The next message of stats' queue, as the consumer hands it over."""
    method, _, body = channel.basic_get(OUTCOMES_QUEUE)
    assert method is not None and body is not None
    return Delivery(body, method.delivery_tag, method.routing_key, method.redelivered)


class Breakers:
    """What a dispatcher reports; the states are set by the test."""

    def __init__(self, circuits: dict[str, str], gateways: dict[str, str]) -> None:
        self.circuits, self.gateways = circuits, gateways

    def breaker_states(self) -> tuple[dict[str, str], dict[str, str]]:
        return self.circuits, self.gateways


def test_totals_and_campaigns_by_status(api: FlaskClient, engine: Engine) -> None:
    running = make_campaign(engine, status="running")
    make_campaign(engine, status="paused")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO message (campaign_id, status)"
                " SELECT :c, 'pending' FROM generate_series(1, 7)"
            ),
            {"c": running},
        )
    got = api.get("/api/v1/operations", headers=READ).json
    assert got["totals"]["pending"] == 7 and got["totals"]["total"] == 7
    assert got["campaigns_by_status"]["running"] == 1
    assert got["campaigns_by_status"]["paused"] == 1
    assert got["campaigns_by_status"]["expired"] == 0


def test_dead_letters_count_what_is_parked(api: FlaskClient, topology: str) -> None:
    connection = connect(topology, "test-operations")
    publisher = ConfirmingPublisher(connection.channel())
    for _ in range(3):
        publisher.publish(DEAD_EXCHANGE, "http", b"{}")
    connection.close()
    assert api.get("/api/v1/operations", headers=READ).json["dead_letters"] == 3


def test_an_unreachable_broker_is_null_not_an_error(settings: Settings, engine: Engine) -> None:
    closed = dataclasses.replace(settings, amqp_url="amqp://guest:guest@127.0.0.1:9/none")
    response = create_app(closed, engine).test_client().get("/api/v1/operations", headers=READ)
    assert response.status_code == 200
    assert response.json["dead_letters"] is None


def test_live_senders_and_the_worst_breaker(api: FlaskClient, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sender_health"))
        record_sender_health(conn, "a.1.x", {"http": "closed"}, {})
        record_sender_health(conn, "b.2.y", {}, {"alpha": "half-open", "beta": "closed"})
        record_sender_health(conn, "gone.3.z", {"http": "open"}, {})
        conn.execute(
            text(
                "UPDATE sender_health SET seen_at = now() - interval '31 seconds'"
                " WHERE instance = 'gone.3.z'"
            )
        )
    got = api.get("/api/v1/operations", headers=READ).json
    assert [s["instance"] for s in got["senders"]] == ["a.1.x", "b.2.y"]
    assert got["senders"][1]["gateways"] == {"alpha": "half-open", "beta": "closed"}
    assert got["breaker"] == "half-open"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sender_health"))
    assert api.get("/api/v1/operations", headers=READ).json["breaker"] == "unknown"


def test_a_senders_breakers_reach_the_api_through_the_broker_and_stats(
    api: FlaskClient, engine: Engine, topology: str
) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sender_health"))
    connection = connect(topology, "test-operations")
    channel = connection.channel()
    breakers = Breakers({"http": "closed"}, {"alpha": "open"})
    reporter = HealthReporter(cast(Any, {"http": breakers}), every_s=60, instance="host.7.abc")
    session = cast(Any, SimpleNamespace(publisher=ConfirmingPublisher(channel), channel=channel))
    reporter.on_tick(session)
    reporter.on_tick(session)  # within the period: nothing more
    delivery = next_delivery(channel)
    assert delivery.routing_key == "sender.health"
    Aggregator(engine, flush_max=100, flush_s=1.0).on_delivery(delivery, session)
    assert channel.basic_get(OUTCOMES_QUEUE)[0] is None  # one snapshot per period
    connection.close()
    got = api.get("/api/v1/operations", headers=READ).json
    assert got["breaker"] == "open"
    (sender,) = got["senders"]
    assert (sender["instance"], sender["circuits"], sender["gateways"]) == (
        "host.7.abc",
        {"http": "closed"},
        {"alpha": "open"},
    )


def test_a_health_message_that_makes_no_sense_is_dropped(engine: Engine, topology: str) -> None:
    connection = connect(topology, "test-operations")
    channel = connection.channel()
    ConfirmingPublisher(channel).publish("outcomes", "sender.health", b"not json")
    session = cast(Any, SimpleNamespace(channel=channel))
    Aggregator(engine, flush_max=100, flush_s=1.0).on_delivery(next_delivery(channel), session)
    # Acked: nothing comes back after the channel closes.
    channel.close()
    again = connection.channel()
    assert again.basic_get(OUTCOMES_QUEUE)[0] is None
    connection.close()
