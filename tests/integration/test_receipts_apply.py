"""Receipts reach messages and notifications through the stats aggregator, in batches.

sent -> delivered or undelivered (error kept); a repeat changes nothing; an unknown id is
counted and acked; a receipt that comes before its sent outcome is applied with it, across
flushes and across concurrent transactions; a complaint opts the client out of e-mail, and
the next campaign leaves them out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, insert, text

from services.api.app import create_app
from services.scheduler.lifecycle import start_due
from services.stats.aggregator import Aggregator
from shared.config import Settings
from shared.db.models import Message, Notification
from shared.db.queries import statuses
from shared.domain.deliveries import NOTIFICATION
from shared.domain.gateway_delivery import DeliveryShares
from shared.domain.receipts import Receipt, from_email, from_gateway
from shared.messaging.consumer import Delivery, Session
from shared.messaging.envelopes import GatewayDelivery, Outcome, OutcomeBatch, ReceiptBatch
from tests.conftest import READ_TOKEN
from tests.support.factories import make_campaign, make_clients
from tests.support.progress import counter_mismatches, notification_count_mismatches
from tests.support.sessions import FakeSession

pytestmark = pytest.mark.integration


class Stats:
    """The aggregator fed deliveries as the stats consumer would feed it."""

    def __init__(self, engine: Engine) -> None:
        self.aggregator = Aggregator(engine, flush_max=100, flush_s=0)
        self.fake = FakeSession()
        self.session = cast(Session, self.fake)
        self.tag = 0

    def receive(self, *batches: OutcomeBatch | ReceiptBatch, flush: bool = True) -> None:
        for batch in batches:
            self.tag += 1
            key = "receipt.http" if isinstance(batch, ReceiptBatch) else "outcome.http"
            self.aggregator.on_delivery(
                Delivery(batch.encode(), self.tag, key, False), self.session
            )
        if flush:
            self.aggregator.flush(self.session)


def messages(engine: Engine, count: int, status: str, **client: Any) -> tuple[int, list[int]]:
    clients = make_clients(engine, count, **client)
    campaign_id = make_campaign(engine, status="running", channel=client.get("channel", "http"))
    with engine.begin() as conn:
        rows = [{"campaign_id": campaign_id, "client_id": c, "status": status} for c in clients]
        conn.execute(insert(Message), rows)
        query = text("SELECT id FROM message WHERE campaign_id = :c ORDER BY id")
        return campaign_id, list(conn.execute(query, {"c": campaign_id}).scalars())


def rows(engine: Engine, table: str = "message") -> dict[int, Any]:
    with engine.connect() as conn:
        query = text(f"SELECT id, status, last_error, delivered_at, client_id FROM {table}")
        return {row.id: row for row in conn.execute(query)}


def receipts(*items: tuple[int, str] | tuple[int, str, str]) -> ReceiptBatch:
    now = time.time()
    return ReceiptBatch(
        tuple(from_gateway(i[0], i[1], i[2] if len(i) > 2 else None, now) for i in items)
    )


def sent(ids: Sequence[int], kind: str = "campaign") -> OutcomeBatch:
    now = time.time()
    return OutcomeBatch(0, tuple(Outcome(i, "sent", 1, now) for i in ids), kind=kind)


def metric(result: str) -> float:
    return REGISTRY.get_sample_value("herald_stats_receipts_total", {"result": result}) or 0.0


def test_receipts_move_sent_messages_on_and_repeats_change_nothing(engine: Engine):
    _, ids = messages(engine, 3, "sent")
    stats = Stats(engine)
    batch = receipts((ids[0], "delivered"), (ids[1], "rejected", "absent subscriber"))

    stats.receive(batch)
    first = rows(engine)
    stats.receive(batch, receipts((ids[1], "delivered")))

    assert rows(engine) == first
    assert first[ids[0]].status == "delivered" and first[ids[0]].delivered_at is not None
    assert (first[ids[1]].status, first[ids[1]].last_error) == (
        "undelivered",
        "rejected: absent subscriber",
    )
    assert first[ids[2]].status == "sent"
    assert stats.fake.acked == [1, 3]
    with engine.connect() as conn:
        assert counter_mismatches(conn) == {}
        progress = conn.execute(text("SELECT sent, delivered, undelivered FROM campaign_progress"))
        assert tuple(progress.one()) == (1, 1, 1)


def test_an_unknown_id_is_counted_and_acknowledged(engine: Engine):
    before = metric("unknown")
    stats = Stats(engine)

    stats.receive(receipts((987654321, "delivered")))

    assert stats.fake.acked == [1]
    assert metric("unknown") - before == 1


def test_a_receipt_before_its_sent_outcome_is_applied_when_the_outcome_is(engine: Engine):
    _, ids = messages(engine, 2, "queued")
    stats = Stats(engine)

    stats.receive(receipts((ids[0], "delivered"), (ids[1], "undelivered", "no route")))
    assert {r.status for r in rows(engine).values()} == {"queued"}

    stats.receive(sent(ids))

    after = rows(engine)
    assert (after[ids[0]].status, after[ids[1]].status) == ("delivered", "undelivered")
    assert after[ids[1]].last_error == "no route"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM early_receipt")).scalar_one() == 0
        assert counter_mismatches(conn) == {}


def test_a_receipt_and_its_outcome_in_one_flush_meet(engine: Engine):
    _, ids = messages(engine, 1, "queued")
    stats = Stats(engine)

    stats.receive(receipts((ids[0], "delivered")), sent(ids))

    assert rows(engine)[ids[0]].status == "delivered"


def test_notifications_take_receipts_too(engine: Engine):
    with engine.begin() as conn:
        notification_id = conn.execute(
            insert(Notification)
            .values(
                channel="http",
                address="+79000000001",
                text="Code 1234",
                status="queued",
                released_at=text("now()"),
                expires_at=text("now() + interval '1 hour'"),
            )
            .returning(Notification.id)
        ).scalar_one()
    stats = Stats(engine)

    stats.receive(receipts((notification_id, "delivered")))
    stats.receive(sent([notification_id], kind=NOTIFICATION))

    assert rows(engine, "notification")[notification_id].status == "delivered"
    with engine.connect() as conn:
        assert notification_count_mismatches(conn) == {}


def run_meanwhile(work: Any) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    return thread


@pytest.mark.parametrize("first", ["outcome", "receipt"])
def test_an_outcome_and_a_receipt_racing_in_two_transactions_lose_nothing(
    engine: Engine, first: str
):
    _, ids = messages(engine, 50, "queued")
    now = time.time()
    outcomes = [Outcome(i, "sent", 1, now) for i in ids]
    found = [Receipt(i, "delivered", None, now) for i in ids]

    def apply_outcomes() -> None:
        with engine.begin() as conn:
            statuses.apply_outcomes(conn, outcomes)
            statuses.apply_early_receipts(conn, ids)

    def apply_receipts() -> None:
        with engine.begin() as conn:
            statuses.apply_receipts(conn, found)

    # The first holds its row locks, uncommitted, while the second starts and must wait.
    with engine.begin() as conn:
        if first == "outcome":
            statuses.apply_outcomes(conn, outcomes)
            statuses.apply_early_receipts(conn, ids)
            other = run_meanwhile(apply_receipts)
        else:
            statuses.apply_receipts(conn, found)
            other = run_meanwhile(apply_outcomes)
        time.sleep(0.3)  # let the other transaction reach the locks
    other.join(timeout=30)

    assert {r.status for r in rows(engine).values()} == {"delivered"}


def test_a_complaint_opts_the_client_out_and_the_next_campaign_leaves_them_out(
    engine: Engine, settings
):
    _, ids = messages(engine, 2, "sent", email="reader@example.org", channel="email")
    complaint = from_email(ids[0], "complaint", False, "marked as spam", time.time())
    assert complaint is not None
    stats = Stats(engine)

    stats.receive(ReceiptBatch((complaint,)))

    after = rows(engine)
    assert (after[ids[0]].status, after[ids[0]].last_error) == (
        "undelivered",
        "complaint: marked as spam",
    )
    with engine.connect() as conn:
        opted = conn.execute(text("SELECT id, opted_out FROM client ORDER BY id")).all()
    assert [list(o.opted_out) for o in opted] == [["email"], []]
    assert opted[0].id == after[ids[0]].client_id

    following = make_campaign(engine, channel="email", subject="Next")
    start_due(engine, Settings().message_partition_ids)
    api = create_app(settings, engine).test_client()
    stats_body = api.get(
        f"/api/v1/campaigns/{following}/stats", headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ).json
    assert stats_body["total"] == 1
    assert stats_body["left_out"]["opted_out"] == 1


def test_receipts_judge_each_gateway_and_the_senders_hear_which_deliver_too_little(
    engine: Engine,
):
    _, ids = messages(engine, 12, "queued")
    stats = Stats(engine)
    stats.aggregator.gateway_shares = DeliveryShares(0.8, min_receipts=4)
    now = time.time()
    taken = [
        Outcome(i, "sent", 1, now, None, "alpha" if n < 6 else "beta", 1) for n, i in enumerate(ids)
    ]
    stats.receive(OutcomeBatch(0, tuple(taken)))
    alpha, beta = ids[:6], ids[6:]
    stats.receive(
        receipts(*[(i, "rejected") for i in alpha[:4]], *[(i, "delivered") for i in alpha[4:]]),
        receipts(*[(i, "delivered") for i in beta]),
    )

    stats.aggregator.on_tick(stats.session)

    [(exchange, key, body)] = stats.fake.published
    assert (exchange, key) == ("campaigns", "gateway.delivery")
    verdicts = GatewayDelivery.decode(body)
    assert verdicts.low == {"alpha"}
    assert verdicts.shares == {"alpha": pytest.approx(2 / 6, abs=1e-3), "beta": 1.0}
    with engine.connect() as conn:
        taken_by: dict[int, str] = dict(conn.execute(text("SELECT id, gateway FROM message")).all())
    assert {taken_by[i] for i in alpha} == {"alpha"} and {taken_by[i] for i in beta} == {"beta"}
