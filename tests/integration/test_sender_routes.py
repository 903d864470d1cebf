"""A sender over two gateways: the receipts' verdict, published by stats on the broker, moves
a route's traffic off a gateway delivering too little and back once it recovers."""

from __future__ import annotations

import dataclasses
import json

import pytest
from prometheus_client import REGISTRY

from shared.domain.routes import parse_routing
from shared.messaging.connection import connect
from shared.messaging.envelopes import GatewayDelivery
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import (
    CAMPAIGNS_EXCHANGE,
    GATEWAY_DELIVERY_KEY,
    OUTCOMES_QUEUE,
    declare_all,
)
from tests.conftest import TEST_VHOST, reset_vhost
from tests.integration.test_sender import (
    Mailbox,
    final_outcomes,
    make_items,
    publish,
    running_sender,
    wait_until,
)
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.integration

VHOST = f"{TEST_VHOST}_sender_routes"


@pytest.fixture(scope="module")
def amqp_url(settings):
    reset_vhost(VHOST)
    return settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST


@pytest.fixture(scope="module")
def gateways():
    servers = {name: FakeGateway().start() for name in ("alpha", "beta")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def sender(settings, amqp_url, gateways):
    spec = {name: {"url": g.url, "token": g.token} for name, g in gateways.items()}
    routing = parse_routing(json.dumps(spec), '{"default": ["alpha", "beta"]}', "", "")
    sender_settings = dataclasses.replace(
        settings, amqp_url=amqp_url, gateway_routing=routing, sender_concurrency=8
    )
    with running_sender(sender_settings) as parts:
        yield parts


@pytest.fixture(scope="module")
def channel(amqp_url, settings):
    connection = connect(amqp_url, "test-sender-routes-client")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    yield ch
    connection.close()


def low(name):
    return REGISTRY.get_sample_value("herald_sender_gateway_low_delivery", {"gateway": name})


def tell(channel, verdicts):
    ConfirmingPublisher(channel).publish(
        CAMPAIGNS_EXCHANGE, GATEWAY_DELIVERY_KEY, verdicts.encode()
    )


def test_receipts_move_a_route_off_a_low_gateway_and_back(channel, sender, gateways):
    outcomes = Mailbox(channel, OUTCOMES_QUEUE)

    tell(channel, GatewayDelivery({"alpha": 0.4, "beta": 0.95}, frozenset({"alpha"})))
    wait_until(lambda: low("alpha") == 1)
    moved = make_items(10)
    campaign = publish(channel, moved)
    while_low = final_outcomes(outcomes, campaign, len(moved))

    tell(channel, GatewayDelivery({"alpha": 0.9}, frozenset()))
    wait_until(lambda: low("alpha") == 0)
    back = make_items(10)
    campaign = publish(channel, back)
    recovered = final_outcomes(outcomes, campaign, len(back))

    assert {o.gateway for o in while_low.values()} == {"beta"}
    assert all(gateways["alpha"].request_count(i.message_id) == 0 for i in moved)
    assert {o.gateway for o in recovered.values()} == {"alpha"}
    assert {o.status for o in (*while_low.values(), *recovered.values())} == {"sent"}
