"""The priority lane in a sender wired as __main__ wires it: notifications get through while
every campaign slot is taken, and their retries come back to their own lane."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from services.sender.__main__ import build_pairs
from services.sender.breaker import ChannelBreaker, breaker_policy
from services.sender.control import HeldCampaigns
from services.sender.dispatcher import Dispatcher
from shared.channels.registry import build_registry
from shared.domain.deliveries import CAMPAIGN, NOTIFICATION
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch, DeliveryItem, OutcomeBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import (
    DELIVERIES_EXCHANGE,
    OUTCOMES_QUEUE,
    SENDER_HEALTH_KEY,
    declare_all,
    lane_key,
)
from tests.conftest import TEST_VHOST, reset_vhost
from tests.support.fake_gateway import STALL, FakeGateway
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

VHOST = f"{TEST_VHOST}_priority"
CONCURRENCY = 4
_ids = itertools.count(int(time.time()) % 1_000_000 * 1000 + 500)


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    server = FakeGateway().start()
    yield server
    server.release()
    server.stop()


@pytest.fixture(scope="module")
def sender(settings, gateway):
    reset_vhost(VHOST)
    amqp_url = settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST
    sender_settings = dataclasses.replace(
        settings,
        amqp_url=amqp_url,
        gateway_url=gateway.url,
        gateway_token=gateway.token,
        gateway_timeout_s=20.0,
        sender_concurrency=CONCURRENCY,
        sender_channels=("http",),
    )
    held = HeldCampaigns()
    breaker = ChannelBreaker("http", breaker_policy(sender_settings))
    dispatcher = Dispatcher(
        "http", build_registry(sender_settings)["http"], CONCURRENCY, breaker, held
    )
    pairs = build_pairs(sender_settings, {"http": dispatcher}, held)
    threads = [threading.Thread(target=c.run, daemon=True) for c, _ in pairs]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(c.is_connected for c, _ in pairs), timeout=20)
    connection = connect(amqp_url, "test-priority-client")
    channel = connection.channel()
    declare_all(channel, sender_settings.retry_delays_ms)
    yield SimpleNamespace(channel=channel, publisher=ConfirmingPublisher(connection.channel()))
    gateway.release()
    for consumer, _ in pairs:
        consumer.stop()
    for thread in threads:
        thread.join(timeout=10)
    dispatcher.close()
    connection.close()


def items(count: int) -> tuple[DeliveryItem, ...]:
    deadline = time.time() + 3600
    return tuple(
        DeliveryItem(next(_ids), f"+1555{n:07d}", f"Hello {n}", 1, deadline) for n in range(count)
    )


def publish(sender, kind: str, batch_items: tuple[DeliveryItem, ...]) -> None:
    campaign_id = 0 if kind == NOTIFICATION else next(_ids)
    body = DeliveryBatch(campaign_id, "http", batch_items, kind).encode()
    sender.publisher.publish(DELIVERIES_EXCHANGE, lane_key("http", kind), body)


def collect(sender, found: list[OutcomeBatch]) -> list[OutcomeBatch]:
    """Add the outcome batches published since the last call to `found`; returns it."""
    while (got := sender.channel.basic_get(OUTCOMES_QUEUE, auto_ack=True))[0] is not None:
        # The sender's periodic breaker report shares the queue; only outcomes count here.
        if got[0].routing_key != SENDER_HEALTH_KEY:
            found.append(OutcomeBatch.decode(got[2]))
    return found


def test_a_notification_goes_out_while_every_campaign_slot_is_stalled(sender, gateway):
    gateway.default_step = STALL
    campaign = items(3 * CONCURRENCY)
    publish(sender, CAMPAIGN, campaign)
    wait_until(lambda: gateway.stalled == CONCURRENCY, timeout=20)

    code = items(1)
    gateway.script(code[0].message_id, [200])
    publish(sender, NOTIFICATION, code)

    reported: list[OutcomeBatch] = []
    wait_until(lambda: collect(sender, reported), timeout=20)
    # The campaign is still stuck behind its stalled slots, with most of it not even tried.
    assert gateway.stalled == CONCURRENCY
    assert sum(gateway.request_count(i.message_id) for i in campaign) == CONCURRENCY
    [batch] = reported
    assert batch.kind == NOTIFICATION
    assert [(o.message_id, o.status) for o in batch.outcomes] == [(code[0].message_id, "sent")]

    gateway.default_step = 200
    gateway.release()
    done: list[OutcomeBatch] = []
    wait_until(
        lambda: sum(len(b.outcomes) for b in collect(sender, done)) == len(campaign),
        timeout=30,
    )
    assert {b.kind for b in done} == {CAMPAIGN}


def test_a_retried_notification_comes_back_on_its_own_lane_past_stalled_campaigns(sender, gateway):
    gateway.default_step = STALL
    campaign = items(2 * CONCURRENCY)
    publish(sender, CAMPAIGN, campaign)
    wait_until(lambda: gateway.stalled == CONCURRENCY, timeout=20)

    code = items(1)
    gateway.script(code[0].message_id, [503, 200])  # transient, then OK after the retry tier
    publish(sender, NOTIFICATION, code)

    reported: list[OutcomeBatch] = []
    wait_until(lambda: collect(sender, reported), timeout=30)
    assert gateway.request_count(code[0].message_id) == 2
    assert gateway.stalled == CONCURRENCY
    [batch] = reported
    assert (batch.kind, batch.outcomes[0].status, batch.outcomes[0].attempt) == (
        NOTIFICATION,
        "sent",
        2,
    )
    gateway.default_step = 200
    gateway.release()
    wait_until(lambda: all(gateway.request_count(i.message_id) for i in campaign), timeout=30)
