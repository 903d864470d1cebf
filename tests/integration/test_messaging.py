import json
import threading
import time

import pytest
from sqlalchemy import func, select

from shared.db.models import Outbox
from shared.messaging.connection import connect
from shared.messaging.consumer import Consumer, Delivery, Session
from shared.messaging.envelopes import CampaignEvent
from shared.messaging.publisher import ConfirmingPublisher, PublishFailed
from shared.messaging.topology import (
    CAMPAIGN_EVENTS_QUEUE,
    CAMPAIGNS_EXCHANGE,
    DEAD_QUEUE,
    DELIVERIES_EXCHANGE,
    RETRY_EXCHANGE,
    declare_all,
    delivery_queue,
    retry_routing_key,
)
from shared.outbox import record, relay_once
from tests.support.waiting import wait_until


@pytest.fixture
def channel(broker, settings):
    connection = connect(broker, "test")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    for queue in (CAMPAIGN_EVENTS_QUEUE, DEAD_QUEUE, delivery_queue("http")):
        ch.queue_purge(queue)
    yield ch
    connection.close()


def get_one(channel, queue, timeout=10.0):
    """Wait for one message on queue and ack it; None if none came."""
    for method, properties, body in channel.consume(queue, inactivity_timeout=timeout):
        channel.cancel()
        if method is None:
            return None
        channel.basic_ack(method.delivery_tag)
        return properties, body
    return None


def test_declaring_the_topology_twice_changes_nothing(channel, settings):
    declare_all(channel, settings.retry_delays_ms)

    assert channel.queue_declare(CAMPAIGN_EVENTS_QUEUE, passive=True).method.message_count == 0


def test_unroutable_publish_raises_publish_failed(channel):
    publisher = ConfirmingPublisher(channel)

    with pytest.raises(PublishFailed):
        publisher.publish(DELIVERIES_EXCHANGE, "no-such-channel", b"{}")


def test_retry_tier_returns_the_message_to_its_delivery_queue(channel, settings):
    publisher = ConfirmingPublisher(channel)

    publisher.publish(RETRY_EXCHANGE, retry_routing_key("http", 1000), b'{"x": 1}')

    properties, body = get_one(channel, delivery_queue("http"), timeout=15)
    assert body == b'{"x": 1}'
    assert properties.headers["x-death"][0]["reason"] == "expired"


def test_poison_message_is_dead_lettered_and_the_consumer_goes_on(channel, broker, settings):
    publisher = ConfirmingPublisher(channel)
    handled: list[int] = []

    def handler(delivery: Delivery, session: Session) -> None:
        handled.append(CampaignEvent.decode(delivery.body).campaign_id)
        session.ack(delivery)

    consumer = Consumer(broker, "t", CAMPAIGN_EVENTS_QUEUE, 10, settings.retry_delays_ms, handler)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        publisher.publish(CAMPAIGNS_EXCHANGE, "campaign.created", b"not json")
        publisher.publish(CAMPAIGNS_EXCHANGE, "campaign.created", CampaignEvent(7).encode())

        parked = get_one(channel, DEAD_QUEUE)
    finally:
        consumer.stop()
        thread.join()

    assert parked is not None and parked[1] == b"not json"
    assert handled == [7]


def test_outbox_rows_are_published_once_and_marked(channel, engine):
    with engine.begin() as conn:
        record(
            conn,
            CAMPAIGNS_EXCHANGE,
            "campaign.created",
            {"campaign_id": 3},
            {"x-correlation-id": "abc"},
        )
    publisher = ConfirmingPublisher(channel)

    assert relay_once(engine, publisher, 100) == 1
    assert relay_once(engine, publisher, 100) == 0

    properties, body = get_one(channel, CAMPAIGN_EVENTS_QUEUE)
    assert json.loads(body) == {"campaign_id": 3}
    assert properties.headers["x-correlation-id"] == "abc"
    with engine.connect() as conn:
        unpublished = conn.scalar(select(func.count()).where(Outbox.published_at.is_(None)))
    assert unpublished == 0


def test_a_stop_is_honoured_within_a_second_while_every_buffered_delivery_fails(
    channel, broker, settings
):
    """pika hands over all it buffered in one call; a stop must not wait for each to fail."""
    for i in range(30):
        channel.basic_publish(DELIVERIES_EXCHANGE, "http", f"batch {i}".encode())
    failures = threading.Event()

    def failing(delivery: Delivery, session: Session) -> None:
        failures.set()
        raise RuntimeError("the database is away")

    consumer = Consumer(
        broker, "test-stop", delivery_queue("http"), 30, settings.retry_delays_ms, failing
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert failures.wait(10)
    stopped_at = time.monotonic()
    consumer.stop()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 1.5

    # Nothing handled is lost: every batch is back in the queue.
    def queued() -> int:
        return channel.queue_declare(delivery_queue("http"), passive=True).method.message_count

    assert wait_until(lambda: queued() == 30, timeout=10)
