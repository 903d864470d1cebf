"""The priority lane on the real database and broker: accept, release within ceilings, wake-ups,
outcomes, and keys that bind once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import threading
import time
from typing import Any, cast

import pytest
from sqlalchemy import text

from services.scheduler.notifications import Wakeups, release_all
from services.stats.aggregator import Aggregator
from shared.config import ChannelLimits
from shared.db.queries.notifications import NewNotification, notification_counts
from shared.db.queries.statuses import accept_notifications, expire_notifications
from shared.domain.deliveries import NOTIFICATION
from shared.messaging.connection import connect
from shared.messaging.consumer import Delivery, Session
from shared.messaging.envelopes import DeliveryBatch, Outcome, OutcomeBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import declare_all, delivery_queue
from tests.conftest import random_suffix, reset_vhost
from tests.support.progress import notification_count_mismatches
from tests.support.sessions import FakeSession
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

VHOST = f"herald_lane_{random_suffix()}"


def soon(hours: float = 1) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def code(n: int, **changes: Any) -> NewNotification:
    base = NewNotification("http", f"+7916000{n:04d}", f"Code {n}", soon())
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def amqp_url(settings):
    reset_vhost(VHOST)
    yield settings.amqp_url.rsplit("/", 1)[0] + "/" + VHOST
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)


@pytest.fixture(scope="module")
def channel(amqp_url, settings):
    connection = connect(amqp_url, "test-lane")
    ch = connection.channel()
    declare_all(ch, settings.retry_delays_ms)
    yield ch
    connection.close()


@pytest.fixture
def publisher(channel, amqp_url, engine):
    for kind in ("campaign", NOTIFICATION):
        channel.queue_purge(delivery_queue("http", kind))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE channel_bucket"))
    connection = connect(amqp_url, "test-lane-publisher")
    yield ConfirmingPublisher(connection.channel())
    connection.close()


def drain(channel, queue: str) -> list[DeliveryBatch]:
    batches = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        batches.append(DeliveryBatch.decode(got[2]))
    return batches


def accept(engine, rows):
    with engine.begin() as conn:
        return accept_notifications(conn, rows)


def test_due_notifications_go_to_the_priority_lane_and_not_the_campaign_one(
    engine, publisher, channel, settings
):
    accepted = accept(engine, [code(i) for i in range(3)])
    later = accept(engine, [code(9, not_before=soon(0.5))])

    assert release_all(engine, publisher, settings, {}) == 3

    batches = drain(channel, delivery_queue("http", NOTIFICATION))
    assert [b.kind for b in batches] == [NOTIFICATION]
    items = batches[0].items
    assert [i.message_id for i in items] == [a.id for a in accepted]
    assert [i.text for i in items] == ["Code 0", "Code 1", "Code 2"]
    assert all(i.client_id is None for i in items)  # transactional: no unsubscribe link
    assert drain(channel, delivery_queue("http")) == []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, released_at FROM notification")).all()
    released = {r.id for r in rows if r.released_at is not None}
    assert released == {a.id for a in accepted}
    assert {r.status for r in rows} == {"queued"}
    assert later[0].id not in released
    # Nothing more is due: a second pass releases nothing again.
    assert release_all(engine, publisher, settings, {}) == 0


def test_the_per_second_ceiling_lets_notifications_out_first_and_debits_campaigns(
    engine, publisher, channel, settings
):
    accept(engine, [code(i) for i in range(12)])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO channel_bucket (channel, tokens) VALUES ('http', 5)"))
    limits = {"http": ChannelLimits(per_second=5)}

    assert release_all(engine, publisher, settings, limits) == 5
    assert release_all(engine, publisher, settings, limits) == 0  # the second is used up

    with engine.connect() as conn:
        tokens = conn.execute(text("SELECT tokens FROM channel_bucket")).scalar_one()
    assert tokens == 0  # campaigns wait for the refill these five took
    wait_until(lambda: release_all(engine, publisher, settings, limits) == 5, timeout=5)
    assert sum(len(b.items) for b in drain(channel, delivery_queue("http", NOTIFICATION))) == 10


def test_a_rolling_window_counts_campaign_releases_too(engine, publisher, settings):
    accept(engine, [code(i) for i in range(5)])
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO channel_release (channel, count, kind) VALUES ('http', 8, 'campaign')"
            )
        )
    limits = {"http": ChannelLimits(windows=((10, 3600.0),))}

    assert release_all(engine, publisher, settings, limits) == 2


def test_an_accept_wakes_the_releaser_at_commit(engine):
    wakeups = Wakeups(engine)
    try:
        assert wakeups.wait(0.05) == set()  # listening, nothing happened
        email = code(2, channel="email", address="a@example.com")
        threading.Timer(0.2, accept, (engine, [code(1), email])).start()
        started = time.monotonic()
        woken: set[str] = set()
        while not woken and time.monotonic() - started < 5:
            woken = wakeups.wait(0.5)
        assert woken == {"http", "email"}
    finally:
        wakeups.close()


def test_overdue_notifications_expire_and_are_never_released(engine, publisher, channel, settings):
    accept(engine, [code(1, expires_at=soon(-0.001))])
    assert release_all(engine, publisher, settings, {}) == 0
    with engine.begin() as conn:
        assert expire_notifications(conn) == 1
    with engine.connect() as conn:
        assert notification_counts(conn) == {"http": {"expired": 1}}
    assert drain(channel, delivery_queue("http", NOTIFICATION)) == []


def test_a_key_binds_one_notification_and_a_changed_body_conflicts(engine):
    first = accept(engine, [code(1, idempotency_key="k1", request_hash="a")])
    again = accept(engine, [code(1, idempotency_key="k1", request_hash="a")])
    changed = accept(engine, [code(2, idempotency_key="k1", request_hash="b")])

    assert first[0].is_new and not again[0].is_new and not again[0].is_conflict
    assert again[0].id == first[0].id
    assert changed[0].is_conflict and changed[0].id == first[0].id
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notification")).scalar_one() == 1


def test_a_key_older_than_a_day_makes_a_new_notification(engine):
    first = accept(engine, [code(1, idempotency_key="old", request_hash="a")])
    with engine.begin() as conn:
        conn.execute(text("UPDATE notification SET created_at = now() - interval '25 hours'"))
    second = accept(engine, [code(1, idempotency_key="old", request_hash="a")])
    assert second[0].is_new and second[0].id != first[0].id


def test_concurrent_retries_with_one_key_store_one_row(engine):
    results = []
    barrier = threading.Barrier(8)

    def retry() -> None:
        barrier.wait()
        results.append(accept(engine, [code(1, idempotency_key="race", request_hash="a")])[0])

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len({r.id for r in results}) == 1
    assert sum(r.is_new for r in results) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notification")).scalar_one() == 1


def test_outcomes_of_notifications_reach_their_rows_and_counts(engine):
    ids = [a.id for a in accept(engine, [code(i) for i in range(3)])]
    now = time.time()
    batch = OutcomeBatch(
        0,
        (Outcome(ids[0], "sent", 1, now), Outcome(ids[1], "failed", 3, now, "HTTP 400: bad")),
        kind=NOTIFICATION,
    )
    aggregator = Aggregator(engine, flush_max=10, flush_s=0)
    fake = FakeSession()
    session = cast(Session, fake)
    aggregator.on_delivery(Delivery(batch.encode(), 7, "outcome.http", False), session)
    aggregator.flush(session)
    # Delivered again (a crash before the ack): nothing changes.
    aggregator.on_delivery(Delivery(batch.encode(), 8, "outcome.http", True), session)
    aggregator.flush(session)

    assert fake.acked == [7, 8]
    with engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(text("SELECT id, status, attempts, last_error FROM notification"))
        }
        assert notification_count_mismatches(conn) == {}
        counts = notification_counts(conn)
    assert (rows[ids[0]].status, rows[ids[1]].status, rows[ids[2]].status) == (
        "sent",
        "failed",
        "queued",
    )
    assert (rows[ids[1]].attempts, rows[ids[1]].last_error) == (3, "HTTP 400: bad")
    assert counts == {"http": {"sent": 1, "failed": 1, "queued": 1}}
