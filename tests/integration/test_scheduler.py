"""The scheduler's tick on the real database and broker: send windows, throttles, fair shares."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time

import pytest
from sqlalchemy import select, text, update

from services.scheduler.ticker import HELD_ROUTING_KEY, Ticker, publish_held
from shared.config import ChannelLimits
from shared.db.models import Campaign, CampaignProgress, CampaignSchedule, ChannelBucket, Message
from shared.db.queries.statuses import apply_outcomes, materialise
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch, Outcome
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import CAMPAIGNS_EXCHANGE, declare_all, delivery_queue
from tests.conftest import random_suffix, reset_vhost
from tests.support.factories import make_campaign, make_clients
from tests.support.waiting import wait_until

VHOST = f"herald_sched_{random_suffix()}"  # concurrent runs of this module never meet
EAST, WEST = "Etc/GMT-14", "Etc/GMT+12"  # UTC+14 and UTC-12: the same clock, two hours apart


@pytest.fixture(scope="module")
def amqp_url(settings):
    reset_vhost(VHOST)
    yield settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)


@pytest.fixture(scope="module")
def channel(amqp_url, settings):
    connection = connect(amqp_url, "test-scheduler")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    yield ch
    connection.close()


@pytest.fixture(scope="module")
def confirming(amqp_url):
    connection = connect(amqp_url, "test-scheduler-publisher")
    yield ConfirmingPublisher(connection.channel())
    connection.close()


@pytest.fixture
def publisher(channel, confirming, engine):
    channel.queue_purge(delivery_queue("http"))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE channel_bucket"))
    return confirming


def ticker(settings, **limits):
    return Ticker(settings, {"http": ChannelLimits(**limits)} if limits else {})


def local_clock(zone_hours: int, shift_s: float = 0) -> dt.time:
    """The wall-clock time now (plus shift) in a fixed-offset zone."""
    now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=zone_hours, seconds=shift_s)
    return now.time().replace(microsecond=0)


def statuses(engine, campaign_id):
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.timezone, m.status, count(*) FROM message m"
                " JOIN client c ON c.id = m.client_id WHERE m.campaign_id = :c GROUP BY 1, 2"
            ),
            {"c": campaign_id},
        ).all()
    return {(zone, status): n for zone, status, n in rows}


def progress(engine, campaign_id):
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(CampaignProgress).where(CampaignProgress.campaign_id == campaign_id)
            )
            .mappings()
            .one()
        )
    return {k: row[k] for k in ("total", "pending", "queued", "expired")}


def not_befores(engine, campaign_id, status="pending"):
    with engine.connect() as conn:
        return set(
            conn.scalars(
                select(Message.not_before).where(
                    Message.campaign_id == campaign_id, Message.status == status
                )
            )
        )


def released_ids(channel):
    ids: list[int] = []
    while True:
        method, _, body = channel.basic_get(delivery_queue("http"), auto_ack=True)
        if method is None:
            return ids
        ids.extend(item.message_id for item in DeliveryBatch.decode(body).items)


def test_recipients_outside_their_window_wait_for_its_local_opening(engine, settings, publisher):
    make_clients(engine, 5, timezone=EAST, first_phone=79000000000)
    make_clients(engine, 7, timezone=WEST, first_phone=79100000000)
    # Open from an hour ago to an hour from now in UTC+14; UTC-12 reads two hours earlier.
    campaign_id = make_campaign(
        engine, window_start=local_clock(14, -3600), window_end=local_clock(14, 3600)
    )
    began = dt.datetime.now(dt.UTC)

    released = ticker(settings).tick(engine, publisher)

    assert released == 5
    assert statuses(engine, campaign_id) == {(EAST, "queued"): 5, (WEST, "pending"): 7}
    (opening,) = not_befores(engine, campaign_id)
    assert abs(opening - (began + dt.timedelta(hours=1))) < dt.timedelta(seconds=5)


def test_a_recipient_is_released_when_the_window_opens(engine, settings, publisher):
    make_clients(engine, 4, timezone=EAST)
    campaign_id = make_campaign(
        engine, window_start=local_clock(14, 2), window_end=local_clock(14, 3600)
    )
    scheduler = ticker(settings)

    first = scheduler.tick(engine, publisher)
    wait_until(lambda: scheduler.tick(engine, publisher), timeout=10)

    assert first == 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(Message.queued_at, Message.not_before).where(Message.campaign_id == campaign_id)
        ).all()
    assert len(rows) == 4
    assert all(queued_at >= not_before for queued_at, not_before in rows)


def test_messages_whose_window_opens_after_the_end_expire_at_once(engine, settings, publisher):
    make_clients(engine, 3, timezone=EAST, first_phone=79000000000)
    make_clients(engine, 6, timezone=WEST, first_phone=79100000000)
    now = dt.datetime.now(dt.UTC)
    campaign_id = make_campaign(
        engine,
        window_start=local_clock(14, -3600),
        window_end=local_clock(14, 3600),
        ends_at=now + dt.timedelta(minutes=30),  # UTC-12 opens in an hour
    )

    ticker(settings).tick(engine, publisher)

    assert statuses(engine, campaign_id) == {(EAST, "queued"): 3, (WEST, "expired"): 6}
    assert progress(engine, campaign_id) == {"total": 9, "pending": 0, "queued": 3, "expired": 6}


def test_a_window_that_closes_holds_what_is_left_until_it_reopens(engine, settings, publisher):
    make_clients(engine, 30, timezone=EAST)
    closes = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    campaign_id = make_campaign(
        engine,
        window_start=local_clock(14, -3600),
        window_end=local_clock(14, 2),
        rate_limit=5,
        ends_at=closes + dt.timedelta(days=2),
    )
    scheduler = ticker(settings)

    wait_until(
        lambda: (
            scheduler.tick(engine, publisher) is not None
            and dt.datetime.now(dt.UTC) > closes + dt.timedelta(seconds=1)
        ),
        timeout=10,
    )

    with engine.connect() as conn:
        last_queued = conn.scalar(
            select(Message.queued_at)
            .where(Message.campaign_id == campaign_id, Message.status == "queued")
            .order_by(Message.queued_at.desc())
            .limit(1)
        )
    assert last_queued < closes + dt.timedelta(seconds=0.5)
    assert 0 < progress(engine, campaign_id)["pending"] < 30
    (reopening,) = not_befores(engine, campaign_id)
    assert reopening > closes + dt.timedelta(hours=22)


def test_a_new_send_window_reschedules_waiting_messages(engine, settings, publisher):
    make_clients(engine, 6, timezone=WEST)
    campaign_id = make_campaign(
        engine, window_start=local_clock(-12, 3600), window_end=local_clock(-12, 7200)
    )
    scheduler = ticker(settings)
    scheduler.tick(engine, publisher)

    with engine.begin() as conn:
        conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(window_start=local_clock(-12, -60), window_end=local_clock(-12, 3600))
        )
    released = scheduler.tick(engine, publisher)

    assert released == 6


def test_messages_back_from_a_pause_wait_for_their_window_again(
    engine, settings, publisher, channel
):
    make_clients(engine, 3, timezone=EAST, first_phone=79000000000)
    make_clients(engine, 2, timezone=WEST, first_phone=79100000000)  # shut all along
    closes = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    make_campaign(
        engine,
        window_start=local_clock(14, -3600),
        window_end=local_clock(14, 2),
        ends_at=closes + dt.timedelta(days=2),
    )
    scheduler = ticker(settings)
    scheduler.tick(engine, publisher)
    ids = released_ids(channel)
    wait_until(
        lambda: (
            scheduler.tick(engine, publisher) is not None
            and dt.datetime.now(dt.UTC) > closes + dt.timedelta(seconds=0.5)
        ),
        timeout=10,
    )
    with engine.begin() as conn:  # the senders hand the paused campaign's items back
        apply_outcomes(conn, [Outcome(i, "held", 1, time.time()) for i in ids])

    released = scheduler.tick(engine, publisher)

    assert (len(ids), released) == (3, 0)
    with engine.connect() as conn:
        reopenings = conn.scalars(select(Message.not_before).where(Message.id.in_(ids))).all()
    assert min(reopenings) > closes + dt.timedelta(hours=22)


def test_two_schedulers_share_one_campaign_bucket(engine, settings, publisher, amqp_url):
    make_clients(engine, 200)
    campaign_id = make_campaign(engine, rate_limit=40)
    ticker(settings).tick(engine, publisher)  # start it
    before = progress(engine, campaign_id)["queued"]
    with engine.begin() as conn:
        # 40 tokens that do not refill for an hour: the two schedulers share exactly these.
        conn.execute(
            update(CampaignSchedule)
            .where(CampaignSchedule.campaign_id == campaign_id)
            .values(tokens=40, refilled_at=text("now() + interval '1 hour'"))
        )
    stop = threading.Event()
    counts = []

    def run():
        connection = connect(amqp_url, "test-second-scheduler")
        own = ConfirmingPublisher(connection.channel())
        scheduler, released = ticker(settings), 0
        while not stop.is_set():
            released += scheduler.tick(engine, own)
        counts.append(released)
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()

    assert sum(counts) == 40
    assert progress(engine, campaign_id)["queued"] == before + 40


@pytest.mark.parametrize(
    "lock",
    [
        "SELECT 1 FROM campaign WHERE id = :c FOR UPDATE",
        "SELECT 1 FROM channel_bucket WHERE channel = 'http' FOR UPDATE",
    ],
)
def test_what_another_scheduler_is_releasing_is_skipped_not_waited_for(
    engine, settings, publisher, lock
):
    make_clients(engine, 5)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        conn.execute(text("INSERT INTO channel_bucket (channel) VALUES ('http')"))
    scheduler = ticker(settings)

    with engine.begin() as other:
        other.execute(text(lock), {"c": campaign_id})
        while_held = scheduler.tick(engine, publisher)
    after = scheduler.tick(engine, publisher)

    assert (while_held, after) == (0, 5)


def test_a_channel_ceiling_is_shared_fairly_between_campaigns(engine, settings, publisher):
    make_clients(engine, 300, first_phone=79000000000, tags=["big"])
    make_clients(engine, 10, first_phone=79100000000, tags=["small"])
    big = make_campaign(engine, filter_tags=["big"])
    small = make_campaign(engine, filter_tags=["small"])
    scheduler = ticker(settings, per_second=60)
    scheduler.tick(engine, publisher)  # start both; the channel bucket is empty
    with engine.begin() as conn:
        conn.execute(
            update(ChannelBucket).values(tokens=60, refilled_at=text("now() + interval '1 hour'"))
        )

    released = scheduler.tick(engine, publisher)

    assert released == 60
    assert (progress(engine, big)["queued"], progress(engine, small)["queued"]) == (50, 10)


def test_a_rolling_window_ceiling_stops_the_channel_until_it_rolls(engine, settings, publisher):
    make_clients(engine, 50)
    campaign_id = make_campaign(engine)
    scheduler = ticker(settings, windows=((30, 3600.0),))

    released = [scheduler.tick(engine, publisher) for _ in range(3)]

    assert released == [30, 0, 0]
    assert progress(engine, campaign_id)["pending"] == 20
    with engine.begin() as conn:
        conn.execute(text("UPDATE channel_release SET released_at = now() - interval '2 hours'"))
    assert scheduler.tick(engine, publisher) == 20


def test_the_held_snapshot_names_paused_campaigns_with_messages_out(
    engine, settings, publisher, channel
):
    make_clients(engine, 5)
    paused = make_campaign(engine)
    idle = make_campaign(engine)
    ticker(settings).tick(engine, publisher)
    with engine.begin() as conn:
        conn.execute(update(Campaign).values(status="paused"))
        conn.execute(
            update(CampaignProgress)
            .where(CampaignProgress.campaign_id == idle)
            .values(queued=0, pending=5)
        )
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, CAMPAIGNS_EXCHANGE, HELD_ROUTING_KEY)

    publish_held(engine, publisher)

    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None
    assert json.loads(body) == {"campaign_ids": [paused]}
