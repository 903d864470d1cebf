"""The sender's circuit breaker against a real broker vhost and a loopback gateway that fails."""

import dataclasses
import logging

import pytest
from prometheus_client import REGISTRY

from shared.domain.breaker import BreakerPolicy
from shared.messaging.connection import connect
from shared.messaging.topology import OUTCOMES_QUEUE, declare_all
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

VHOST = f"{TEST_VHOST}_sender_breaker"
CONCURRENCY = 4
MIN_CALLS = 10
TRIAL_CALLS = BreakerPolicy(0.8, MIN_CALLS, 1.0).trial_calls


@pytest.fixture(scope="module")
def amqp_url(settings):
    reset_vhost(VHOST)
    return settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST


@pytest.fixture(scope="module")
def gateway():
    server = FakeGateway().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sender(settings, amqp_url, gateway):
    sender_settings = dataclasses.replace(
        settings,
        amqp_url=amqp_url,
        gateway_url=gateway.url,
        gateway_token=gateway.token,
        gateway_timeout_s=5.0,
        sender_concurrency=CONCURRENCY,
        breaker_failure_ratio=0.8,
        breaker_min_calls=MIN_CALLS,
        breaker_open_s=1.0,
    )
    with running_sender(sender_settings) as parts:
        yield parts


@pytest.fixture(scope="module")
def channel(amqp_url, settings):
    connection = connect(amqp_url, "test-breaker-client")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    yield ch
    connection.close()


@pytest.fixture
def outcomes(channel, sender):
    return Mailbox(channel, OUTCOMES_QUEUE)


def sample(name):
    # SMS breaks per gateway; the single gateway of these tests is "default".
    return REGISTRY.get_sample_value(name, {"gateway": "default"}) or 0.0


def test_a_failing_gateway_is_left_alone_while_the_circuit_is_open_and_served_once_back(
    channel, gateway, outcomes, caplog
):
    caplog.set_level(logging.INFO, logger="shared.channels.gateway_router")
    opened_before = sample("herald_sender_gateway_circuit_opened_total")
    gateway.default_step = 503
    items = make_items(40)

    campaign_id = publish(channel, items)

    wait_until(lambda: sample("herald_sender_gateway_circuit_opened_total") > opened_before)
    assert sample("herald_sender_gateway_circuit_open") == 1
    calls_when_opened = gateway.total_requests()
    # Reopened after a failed trial: a whole open period has gone by.
    wait_until(lambda: sample("herald_sender_gateway_circuit_opened_total") > opened_before + 1)
    calls_while_open = gateway.total_requests() - calls_when_opened
    gateway.default_step = 200

    final = final_outcomes(outcomes, campaign_id, len(items))
    assert calls_when_opened < len(items)
    # Only requests already under way when it opened, and the trials.
    assert calls_while_open <= CONCURRENCY + TRIAL_CALLS
    assert {o.status for o in final.values()} == {"sent"}
    # Items held back while it was open were not charged an attempt.
    for item in items:
        assert final[item.message_id].attempt == gateway.request_count(item.message_id)
    wait_until(lambda: sample("herald_sender_gateway_circuit_open") == 0)
    openings = sample("herald_sender_gateway_circuit_opened_total") - opened_before
    lines = [r.getMessage() for r in caplog.records if "circuit" in r.getMessage()]
    assert len([line for line in lines if "opened" in line]) == openings
    assert len([line for line in lines if "closed" in line]) == 1
