"""The sender's worker against a real broker vhost and a loopback fake gateway."""

import contextlib
import dataclasses
import itertools
import json
import logging
import subprocess
import threading
import time
from types import SimpleNamespace

import pika
import pytest
from prometheus_client import REGISTRY

from services.sender.breaker import ChannelBreaker, breaker_policy
from services.sender.control import ControlQueue, HeldCampaigns
from services.sender.dispatcher import Dispatcher
from services.sender.worker import ERROR_HEADER, RetryPolicy, Worker
from shared.channels.http_gateway import iso_utc
from shared.channels.registry import build_registry
from shared.messaging.connection import connect
from shared.messaging.consumer import Consumer
from shared.messaging.envelopes import CampaignEvent, DeliveryBatch, DeliveryItem, OutcomeBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import (
    CAMPAIGNS_EXCHANGE,
    DEAD_QUEUE,
    DELIVERIES_EXCHANGE,
    OUTCOMES_QUEUE,
    RETRY_EXCHANGE,
    declare_all,
    delivery_queue,
    retry_queue,
    retry_routing_key,
)
from tests.conftest import TEST_VHOST, reset_vhost
from tests.support.fake_gateway import FakeGateway

# A vhost of this module's own: other modules reset theirs while these tests run.
VHOST = f"{TEST_VHOST}_sender"
MAX_ATTEMPTS = 3
_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)


def wait_until(predicate, timeout=20.0, interval=0.05):
    """Poll predicate until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Mailbox:
    """Everything taken from one queue so far: (properties, body, routing key)."""

    def __init__(self, channel, queue):
        self.channel = channel
        self.queue = queue
        self.messages = []

    def fetch(self):
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.messages
            self.messages.append((properties, body, method.routing_key))


@pytest.fixture(scope="module")
def amqp_url(settings):
    reset_vhost(VHOST)
    return settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST


@pytest.fixture(scope="module")
def gateway():
    server = FakeGateway().start()
    yield server
    server.stop()


@contextlib.contextmanager
def running_sender(settings):
    """A sender wired as __main__ wires it, consuming in a thread; yields its parts."""
    held = HeldCampaigns()
    breaker = ChannelBreaker("http", breaker_policy(settings))
    dispatcher = Dispatcher(
        "http", build_registry(settings)["http"], settings.sender_concurrency, breaker, held
    )
    control = ControlQueue(held)
    policy = RetryPolicy(settings.retry_delays_ms, settings.max_attempts)
    worker = Worker(
        {"http": dispatcher}, policy, control=control, max_unreported=settings.sender_concurrency
    )
    consumer = Consumer(
        settings.amqp_url,
        "test-sender",
        delivery_queue("http"),
        settings.sender_prefetch,
        settings.retry_delays_ms,
        worker.handle,
        on_tick=worker.on_tick,
        on_session_lost=worker.on_session_lost,
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    wait_until(lambda: consumer.is_connected and control.is_attached)
    yield SimpleNamespace(consumer=consumer, held=held, dispatcher=dispatcher)
    consumer.stop()
    thread.join(timeout=10)
    dispatcher.close()


@pytest.fixture(scope="module")
def sender(settings, amqp_url, gateway):
    sender_settings = dataclasses.replace(
        settings,
        amqp_url=amqp_url,
        gateway_url=gateway.url,
        gateway_token=gateway.token,
        # Longer than any stall a test plays, so a stalled request is never retried.
        gateway_timeout_s=10.0,
        sender_concurrency=8,
        max_attempts=MAX_ATTEMPTS,
    )
    with running_sender(sender_settings) as parts:
        yield parts


@pytest.fixture(scope="module")
def channel(amqp_url, settings):
    connection = connect(amqp_url, "test-sender-client")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    yield ch
    connection.close()


@pytest.fixture
def outcomes(channel, sender):
    return Mailbox(channel, OUTCOMES_QUEUE)


@pytest.fixture
def dead(channel, sender):
    return Mailbox(channel, DEAD_QUEUE)


def make_items(count, deadline_in_s=3600.0, attempt=1):
    deadline = time.time() + deadline_in_s
    return [
        DeliveryItem(next(_ids), f"+1555{n:07d}", f"Hello {n}", attempt, deadline)
        for n in range(count)
    ]


def publish(
    channel,
    items,
    campaign_id=None,
    correlation_id="corr-1",
    channel_name="http",
    exchange=DELIVERIES_EXCHANGE,
    routing_key="http",
):
    campaign_id = campaign_id or next(_ids)
    batch = DeliveryBatch(campaign_id, channel_name, tuple(items))
    headers = {"x-campaign-id": campaign_id, "x-correlation-id": correlation_id}
    ConfirmingPublisher(channel).publish(exchange, routing_key, batch.encode(), headers)
    return campaign_id


def announce(channel, event, campaign_id):
    """Publish a campaign event as the API's outbox relay does."""
    body = CampaignEvent(campaign_id).encode()
    ConfirmingPublisher(channel).publish(CAMPAIGNS_EXCHANGE, f"campaign.{event}", body)


def announce_held(channel, campaign_ids):
    """Publish the scheduler's periodic snapshot of held campaigns."""
    body = json.dumps({"campaign_ids": list(campaign_ids)}).encode()
    ConfirmingPublisher(channel).publish(CAMPAIGNS_EXCHANGE, "campaign.held", body)


def outcomes_of(mailbox, campaign_id):
    """Decoded outcome batches for one campaign, with their headers and routing keys."""
    return [
        (OutcomeBatch.decode(body), properties.headers, key)
        for properties, body, key in mailbox.fetch()
        if OutcomeBatch.decode(body).campaign_id == campaign_id
    ]


def final_outcomes(mailbox, campaign_id, count):
    """Wait until `count` outcomes of the campaign have arrived; {message_id: Outcome}."""

    def collected():
        found = {
            o.message_id: o for b, _, _ in outcomes_of(mailbox, campaign_id) for o in b.outcomes
        }
        return found if len(found) >= count else None

    return wait_until(collected)


def dead_batches_of(mailbox, campaign_id):
    return [
        (DeliveryBatch.decode(body), properties.headers)
        for properties, body, _ in mailbox.fetch()
        if body.startswith(b"{") and DeliveryBatch.decode(body).campaign_id == campaign_id
    ]


def queue_depth(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def batches_consumed():
    sample = REGISTRY.get_sample_value("herald_sender_batches_consumed_total", {"channel": "http"})
    return sample or 0.0


def close_from_broker(connection_name):
    """Close this module's connections of that name from the broker's side, as a restart does."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers"]
        + ["pid", "vhost", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # The JSON formatter prints pids in a form close_connection does not take.
    named = f'{{"connection_name","{connection_name}"}}'
    pids = [
        pid
        for pid, vhost, properties in (line.split("\t", 2) for line in listing.splitlines())
        if vhost == VHOST and named in properties
    ]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: session lost"],
            check=True,
            capture_output=True,
        )
    return len(pids)


def test_each_item_reaches_the_gateway_once_and_outcome_batches_report_each_once(
    channel, gateway, outcomes
):
    items = make_items(50)

    campaign_id = publish(channel, items, correlation_id="corr-50")

    final = final_outcomes(outcomes, campaign_id, 50)
    # Usually one batch; a batch still busy after half a second reports in parts.
    batches = outcomes_of(outcomes, campaign_id)
    assert sum(len(batch.outcomes) for batch, _, _ in batches) == 50
    for _, headers, routing_key in batches:
        assert routing_key == "outcome.http"
        assert headers["x-correlation-id"] == "corr-50"
        assert headers["x-campaign-id"] == campaign_id
    assert {o.status for o in final.values()} == {"sent"}
    assert {o.attempt for o in final.values()} == {1}
    # Each outcome names the gateway that took it and what it billed, in segments.
    assert {(o.gateway, o.segments) for o in final.values()} == {("default", 1)}
    for item in items:
        [request] = gateway.requests_for(item.message_id)
        assert request.body == {
            "id": item.message_id,
            "phone": item.address.lstrip("+"),
            "text": item.text,
            "valid_until": iso_utc(item.deadline),
        }
        assert request.headers["Authorization"] == f"Bearer {gateway.token}"
        assert request.headers["Idempotency-Key"] == str(item.message_id)


def test_rejected_item_fails_with_the_reason_and_is_parked_without_retry(
    channel, gateway, outcomes, dead, settings
):
    items = make_items(3)
    gateway.script(items[0].message_id, [400])

    campaign_id = publish(channel, items)

    final = final_outcomes(outcomes, campaign_id, 3)
    assert final[items[0].message_id].status == "failed"
    assert final[items[0].message_id].error.startswith("HTTP 400")
    assert {final[i.message_id].status for i in items[1:]} == {"sent"}
    [(parked, headers)] = wait_until(lambda: dead_batches_of(dead, campaign_id))
    assert [i.message_id for i in parked.items] == [items[0].message_id]
    assert headers[ERROR_HEADER].startswith("HTTP 400")
    # Retries are published before the dead letter, so any would be queued by now.
    assert all(queue_depth(channel, retry_queue("http", d)) == 0 for d in settings.retry_delays_ms)
    assert gateway.request_count(items[0].message_id) == 1


def test_transient_failure_comes_back_through_the_first_tier_and_is_sent(
    channel, gateway, outcomes
):
    items = make_items(5)
    flaky = items[2]
    gateway.script(flaky.message_id, [503])

    campaign_id = publish(channel, items)

    final = final_outcomes(outcomes, campaign_id, 5)
    assert {o.status for o in final.values()} == {"sent"}
    assert final[flaky.message_id].attempt == 2
    assert gateway.request_count(flaky.message_id) == 2
    for item in items:
        if item is not flaky:
            assert final[item.message_id].attempt == 1
            assert gateway.request_count(item.message_id) == 1


def test_item_out_of_attempts_fails_and_is_parked(channel, gateway, outcomes, dead):
    [item] = make_items(1, attempt=MAX_ATTEMPTS)
    gateway.script(item.message_id, [503])

    campaign_id = publish(channel, [item])

    final = final_outcomes(outcomes, campaign_id, 1)
    assert final[item.message_id].status == "failed"
    assert final[item.message_id].error.startswith("HTTP 503")
    [(parked, _)] = wait_until(lambda: dead_batches_of(dead, campaign_id))
    assert [i.message_id for i in parked.items] == [item.message_id]


def test_item_past_its_deadline_is_not_posted_and_expires(channel, gateway, outcomes):
    [late] = make_items(1, deadline_in_s=-1)
    [on_time] = make_items(1)

    campaign_id = publish(channel, [late, on_time])

    final = final_outcomes(outcomes, campaign_id, 2)
    assert final[late.message_id].status == "expired"
    assert final[on_time.message_id].status == "sent"
    assert gateway.request_count(late.message_id) == 0


def test_poison_body_is_dead_lettered(channel, dead):
    properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)

    channel.basic_publish(DELIVERIES_EXCHANGE, "http", b"not a batch", properties)

    wait_until(lambda: any(body == b"not a batch" for _, body, _ in dead.fetch()))


def test_batch_for_a_channel_without_messenger_is_dead_lettered(channel, gateway, dead):
    items = make_items(2)

    campaign_id = publish(channel, items, channel_name="carrier-pigeon")

    [(parked, _)] = wait_until(lambda: dead_batches_of(dead, campaign_id))
    assert parked.channel == "carrier-pigeon"
    assert gateway.request_count(items[0].message_id) == 0


def test_batch_lacking_fields_is_dead_lettered_with_the_reason_and_consuming_goes_on(
    channel, outcomes, dead, caplog
):
    caplog.set_level(logging.ERROR, logger="shared.messaging.consumer")
    poison = json.dumps({"v": 1, "campaign_id": next(_ids), "channel": "http"}).encode()
    properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    channel.basic_publish(DELIVERIES_EXCHANGE, "http", poison, properties)
    items = make_items(2)

    campaign_id = publish(channel, items)

    assert {o.status for o in final_outcomes(outcomes, campaign_id, 2).values()} == {"sent"}
    wait_until(lambda: any(body == poison for _, body, _ in dead.fetch()))
    assert [body for _, body, _ in dead.fetch()].count(poison) == 1
    [line] = [r.getMessage() for r in caplog.records if "poison" in r.getMessage()]
    assert "'items'" in line


def test_item_whose_deadline_passes_in_a_delay_queue_expires_unsent(channel, gateway, outcomes):
    [item] = make_items(1, deadline_in_s=0.3, attempt=2)

    campaign_id = publish(
        channel, [item], exchange=RETRY_EXCHANGE, routing_key=retry_routing_key("http", 1000)
    )

    final = final_outcomes(outcomes, campaign_id, 1)
    assert final[item.message_id].status == "expired"
    assert final[item.message_id].attempt == 1
    assert gateway.request_count(item.message_id) == 0


def test_failure_whose_retry_would_come_too_late_expires_with_its_error_and_is_parked(
    channel, gateway, outcomes, dead
):
    # Attempt 2 waits the 2 s tier, which would bring it back after the deadline.
    [item] = make_items(1, deadline_in_s=1.9, attempt=2)
    gateway.script(item.message_id, [503])

    campaign_id = publish(channel, [item])

    final = final_outcomes(outcomes, campaign_id, 1)
    assert final[item.message_id].status == "expired"
    assert final[item.message_id].error.startswith("HTTP 503")
    [(parked, headers)] = wait_until(lambda: dead_batches_of(dead, campaign_id))
    assert [i.message_id for i in parked.items] == [item.message_id]
    assert headers[ERROR_HEADER].startswith("HTTP 503")
    assert gateway.request_count(item.message_id) == 1


def test_stalled_items_hold_back_neither_the_rest_of_their_batch_nor_another_campaign(
    channel, gateway, outcomes
):
    items = make_items(10)
    stalled, fast = items[:2], items[2:]
    for item in stalled:
        gateway.script(item.message_id, ["stall"])
    first = publish(channel, items)
    wait_until(lambda: gateway.stalled == 2)
    others = make_items(5)

    second = publish(channel, others)

    fast_outcomes = final_outcomes(outcomes, first, len(fast))
    other_outcomes = final_outcomes(outcomes, second, len(others))
    assert gateway.stalled == 2, "outcomes came in only once the stalled requests answered"
    assert set(fast_outcomes) == {i.message_id for i in fast}
    assert {o.status for o in fast_outcomes.values()} == {"sent"}
    assert {o.status for o in other_outcomes.values()} == {"sent"}
    gateway.release()
    final = final_outcomes(outcomes, first, len(items))
    assert {o.status for o in final.values()} == {"sent"}
    assert all(gateway.request_count(i.message_id) == 1 for i in items)


def test_paused_campaign_is_held_without_posting_and_delivered_once_resumed(
    channel, gateway, outcomes, sender
):
    campaign_id = next(_ids)
    announce(channel, "paused", campaign_id)
    wait_until(lambda: campaign_id in sender.held)
    paused = make_items(5)

    publish(channel, paused, campaign_id=campaign_id)

    final = final_outcomes(outcomes, campaign_id, len(paused))
    assert {o.status for o in final.values()} == {"held"}
    assert {o.attempt for o in final.values()} == {0}
    assert all(gateway.request_count(i.message_id) == 0 for i in paused)

    announce(channel, "resumed", campaign_id)
    wait_until(lambda: campaign_id not in sender.held)
    released = make_items(5)
    publish(channel, released, campaign_id=campaign_id)

    final = final_outcomes(outcomes, campaign_id, len(paused) + len(released))
    assert {final[i.message_id].status for i in released} == {"sent"}
    assert all(gateway.request_count(i.message_id) == 1 for i in released)


def test_held_snapshot_replaces_the_paused_campaigns(channel, gateway, outcomes, sender):
    paused_before, held_now = next(_ids), next(_ids)
    announce(channel, "paused", paused_before)
    announce_held(channel, [held_now])
    wait_until(lambda: held_now in sender.held)
    items_before, items_now = make_items(2), make_items(2)

    publish(channel, items_before, campaign_id=paused_before)
    publish(channel, items_now, campaign_id=held_now)

    assert {o.status for o in final_outcomes(outcomes, paused_before, 2).values()} == {"sent"}
    assert {o.status for o in final_outcomes(outcomes, held_now, 2).values()} == {"held"}
    assert all(gateway.request_count(i.message_id) == 0 for i in items_now)
    announce_held(channel, [])


def test_cancelled_campaign_stays_held_whatever_later_snapshots_say(
    channel, gateway, outcomes, sender
):
    cancelled, marker = next(_ids), next(_ids)
    announce(channel, "cancelled", cancelled)
    announce_held(channel, [marker])
    wait_until(lambda: marker in sender.held)
    items = make_items(3)

    publish(channel, items, campaign_id=cancelled)

    assert {o.status for o in final_outcomes(outcomes, cancelled, 3).values()} == {"held"}
    assert all(gateway.request_count(i.message_id) == 0 for i in items)
    announce_held(channel, [])


def test_a_lost_session_sends_no_more_of_its_batch_and_the_redelivery_resends_nothing_kept(
    channel, gateway, outcomes, sender
):
    # The sender has 8 slots: 4 items answer at once, 8 stall and hold every slot, 8 wait.
    items = make_items(20)
    answered, stalled, waiting = items[:4], items[4:12], items[12:]
    for item in stalled:
        gateway.script(item.message_id, ["stall"])
    consumed = batches_consumed()
    campaign_id = publish(channel, items)
    wait_until(lambda: gateway.stalled == len(stalled))

    assert close_from_broker("test-sender") == 1
    # The broker delivers the batch again while the stalled requests are still out.
    wait_until(lambda: batches_consumed() == consumed + 2)
    gateway.release()

    final = final_outcomes(outcomes, campaign_id, len(items))
    assert {o.status for o in final.values()} == {"sent"}
    assert {o.attempt for o in final.values()} == {1}
    for group in (answered, stalled, waiting):
        assert [gateway.request_count(i.message_id) for i in group] == [1] * len(group)


def test_a_redelivery_leaves_out_items_whose_outcomes_were_published_before_the_loss(
    channel, gateway, outcomes, sender
):
    items = make_items(6)
    answered, stalled = items[:3], items[3:]
    for item in stalled:
        gateway.script(item.message_id, ["stall"])
    consumed = batches_consumed()
    campaign_id = publish(channel, items)
    wait_until(lambda: gateway.stalled == len(stalled))
    # The batch waits on its stalled items, so it publishes the others' outcomes meanwhile.
    assert set(final_outcomes(outcomes, campaign_id, len(answered))) == {
        i.message_id for i in answered
    }

    assert close_from_broker("test-sender") == 1
    wait_until(lambda: batches_consumed() == consumed + 2)
    gateway.release()

    final = final_outcomes(outcomes, campaign_id, len(items))
    assert {o.status for o in final.values()} == {"sent"}
    reported = [o.message_id for b, _, _ in outcomes_of(outcomes, campaign_id) for o in b.outcomes]
    assert sorted(reported) == sorted(i.message_id for i in items)
    assert [gateway.request_count(i.message_id) for i in items] == [1] * len(items)


def test_a_batch_waits_while_the_in_flight_limit_of_items_has_no_outcome_published(
    channel, gateway, outcomes, sender
):
    # 8 items may be delivered and unreported at once: 7 stall, so the second batch waits
    # although a delivery slot is free, and a lost session leaves nothing of it sent.
    first, second = make_items(8), make_items(8)
    for item in first[1:]:
        gateway.script(item.message_id, ["stall"])
    consumed = batches_consumed()
    first_campaign = publish(channel, first)
    wait_until(lambda: gateway.stalled == 7)
    second_campaign = publish(channel, second)
    wait_until(lambda: batches_consumed() == consumed + 2)
    # Published at a tick after the second batch came: had it been dispatched, it would
    # have gone through the free slot by then.
    final_outcomes(outcomes, first_campaign, 1)

    assert [gateway.request_count(i.message_id) for i in second] == [0] * len(second)
    assert close_from_broker("test-sender") == 1
    wait_until(lambda: batches_consumed() == consumed + 4)
    gateway.release()

    assert {o.status for o in final_outcomes(outcomes, first_campaign, 8).values()} == {"sent"}
    assert {o.status for o in final_outcomes(outcomes, second_campaign, 8).values()} == {"sent"}
    for items in (first, second):
        assert [gateway.request_count(i.message_id) for i in items] == [1] * len(items)
