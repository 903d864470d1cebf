"""Every status statement changes rows only as its move in shared/domain/statuses.py allows.

Rows in every status are seeded, each statement runs over all of them, and each row's
before -> after is checked against the move's data; the progress counters must still equal
count(*) by status afterwards, whatever statement ran.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import Connection

from shared.db.models import EarlyReceipt, Message, Notification
from shared.db.queries import statuses
from shared.db.queries.notifications import NewNotification
from shared.domain.receipts import Receipt
from shared.domain.statuses import (
    ACTIONS,
    CAMPAIGN_MOVES,
    MESSAGE_MOVES,
    NOTIFICATION_MOVES,
    CampaignStatus,
    IllegalTransition,
    MessageStatus,
    NotificationStatus,
    transition,
)
from shared.messaging.envelopes import Outcome
from tests.support.factories import make_campaign, make_clients
from tests.support.progress import counter_mismatches, notification_count_mismatches

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)
LATE = NOW + dt.timedelta(hours=2)  # past the seeded campaign's end


def seed_messages(engine: Engine) -> tuple[int, list[int]]:
    """A running campaign with two messages in every status and two clients still without."""
    clients = make_clients(engine, 2 * len(MessageStatus) + 2)
    campaign_id = make_campaign(engine, status="running", started_at=NOW)
    statuses_cycle = itertools.cycle(MessageStatus)
    rows = [
        {
            "campaign_id": campaign_id,
            "client_id": client_id,
            "status": str(next(statuses_cycle)),
            # One of each status is due, the other waits past the end (expire_late takes it).
            "not_before": NOW - dt.timedelta(minutes=1) if i < len(MessageStatus) else LATE,
        }
        for i, client_id in enumerate(clients[:-2])
    ]
    with engine.begin() as conn:
        conn.execute(insert(Message), rows)
    return campaign_id, clients


def outcomes_for_all(conn: Connection, campaign_id: int) -> list[Outcome]:
    ids = conn.execute(
        text("SELECT id FROM message WHERE campaign_id = :c ORDER BY id"), {"c": campaign_id}
    ).scalars()
    kinds = itertools.cycle(("sent", "failed", "expired", "held"))
    return [Outcome(i, next(kinds), 1, time.time(), None) for i in ids]


def receipts_for_all(conn: Connection, table: str) -> list[Receipt]:
    """A delivered or undelivered receipt for every row of the table, in turns."""
    ids = conn.execute(text(f"SELECT id FROM {table} ORDER BY id")).scalars()
    kinds = itertools.cycle(("delivered", "undelivered"))
    return [Receipt(i, next(kinds), None, time.time()) for i in ids]


def early_receipts_for_all(conn: Connection, table: str) -> Any:
    """Receipts kept early for every row, then applied to those now sent."""
    receipts = receipts_for_all(conn, table)
    conn.execute(
        insert(EarlyReceipt),
        [{"id": r.id, "status": r.status, "at": NOW} for r in receipts],
    )
    return statuses.apply_early_receipts(conn, [r.id for r in receipts])


MessageRun = Callable[[Connection, int, list[int]], Any]
MESSAGE_RUNS: dict[str, MessageRun] = {
    "materialise": lambda conn, c, _: statuses.materialise(conn, c),
    "claim_due": lambda conn, c, _: statuses.claim_due(conn, c, 1000),
    "apply_outcomes": lambda conn, c, _: statuses.apply_outcomes(conn, outcomes_for_all(conn, c)),
    "close_pending": lambda conn, c, _: statuses.close_pending(conn, [c], "expired"),
    "expire_late": lambda conn, c, _: statuses.expire_late(conn, c, NOW + dt.timedelta(hours=1)),
    "cancel_client_pending": lambda conn, _, clients: [
        statuses.cancel_client_pending(conn, client) for client in clients
    ],
    "requeue_failed": lambda conn, c, _: statuses.requeue_failed(conn, c),
    "apply_receipts": lambda conn, *_: statuses.apply_receipts(
        conn, receipts_for_all(conn, "message")
    ),
    "apply_early_receipts": lambda conn, *_: early_receipts_for_all(conn, "message"),
}


def message_statuses(conn: Connection) -> dict[int, str]:
    rows = conn.execute(text("SELECT client_id, status FROM message")).mappings()
    return {row["client_id"]: row["status"] for row in rows}


def test_every_message_move_has_a_run_here():
    assert set(MESSAGE_RUNS) == set(MESSAGE_MOVES) == set(statuses.MESSAGE_STATEMENTS)


@pytest.mark.parametrize("name", sorted(MESSAGE_MOVES))
def test_a_message_statement_makes_only_its_moves(engine: Engine, name: str):
    campaign_id, clients = seed_messages(engine)
    with engine.connect() as conn:
        before = message_statuses(conn)

    with engine.begin() as conn:
        MESSAGE_RUNS[name](conn, campaign_id, clients)

    with engine.connect() as conn:
        after = message_statuses(conn)
        mismatches = counter_mismatches(conn)
    changes = {(before.get(k), v) for k, v in after.items() if before.get(k) != v}
    move = MESSAGE_MOVES[name]
    assert changes, f"{name} changed nothing: the seed misses its sources"
    assert {c for c in changes if not move.allows(*c)} == set()
    assert mismatches == {}


def seed_campaigns(engine: Engine) -> None:
    """Two campaigns in every status, one whose end is still ahead and one whose end passed."""
    for status in CampaignStatus:
        for ends_at in (NOW + dt.timedelta(hours=1), NOW - dt.timedelta(minutes=1)):
            make_campaign(
                engine, status=str(status), starts_at=NOW - dt.timedelta(hours=2), ends_at=ends_at
            )


def act_on_all(conn: Connection, *, action: str) -> None:
    """What the API does for an operator's action, on every campaign the action allows."""
    for row in conn.execute(text("SELECT id, status FROM campaign")).mappings().all():
        try:
            target = transition(CampaignStatus(row["status"]), action)
        except IllegalTransition:
            continue
        statuses.set_action_status(conn, row["id"], target)


def create(conn: Connection) -> None:
    values = {
        "name": "created",
        "channel": "http",
        "text": "Hi",
        "filter_tags": [],
        "filter_operator_codes": [],
        "starts_at": NOW,
        "ends_at": NOW + dt.timedelta(hours=1),
    }
    statuses.CAMPAIGN_STATEMENTS["create"](conn, values)


def each_campaign(run: Callable[[Connection, int], Any]) -> Callable[[Connection], None]:
    def run_all(conn: Connection) -> None:
        for campaign_id in conn.execute(text("SELECT id FROM campaign")).scalars().all():
            run(conn, campaign_id)

    return run_all


CAMPAIGN_RUNS: dict[str, Callable[[Connection], Any]] = {
    "create": create,
    "start": each_campaign(statuses.start),
    "finish": statuses.finish,
    "expire_idle": statuses.expire_idle,
    "reopen": each_campaign(statuses.reopen),
    **{action: partial(act_on_all, action=action) for action in ACTIONS},
}


def campaign_statuses(conn: Connection) -> dict[int, str]:
    rows = conn.execute(text("SELECT id, status FROM campaign")).mappings()
    return {row["id"]: row["status"] for row in rows}


def test_every_campaign_move_has_a_run_here():
    assert set(CAMPAIGN_RUNS) == set(CAMPAIGN_MOVES)
    assert set(statuses.CAMPAIGN_STATEMENTS) == set(CAMPAIGN_MOVES)


@pytest.mark.parametrize("name", sorted(CAMPAIGN_MOVES))
def test_a_campaign_statement_makes_only_its_moves(engine: Engine, name: str):
    seed_campaigns(engine)
    with engine.connect() as conn:
        before = campaign_statuses(conn)

    with engine.begin() as conn:
        CAMPAIGN_RUNS[name](conn)

    with engine.connect() as conn:
        after = campaign_statuses(conn)
    changes = {(before.get(k), v) for k, v in after.items() if before.get(k) != v}
    move = CAMPAIGN_MOVES[name]
    assert changes, f"{name} changed nothing: the seed misses its sources"
    assert {c for c in changes if not move.allows(*c)} == set()


def seed_notifications(engine: Engine) -> None:
    """Notifications in every status, each released and not, due or overdue (expires_at)."""
    rows = [
        {
            "channel": "http",
            "address": "+79000000000",
            "text": "Code",
            "status": str(status),
            "released_at": NOW if released else None,
            "expires_at": NOW + dt.timedelta(hours=1) if due else NOW - dt.timedelta(seconds=1),
        }
        for status in NotificationStatus
        for released in (False, True)
        for due in (False, True)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Notification), rows)


def new_notification(key: str | None = None) -> NewNotification:
    return NewNotification(
        "http", "+79000000001", "Hi", NOW + dt.timedelta(hours=1), idempotency_key=key
    )


def notification_outcomes(conn: Connection) -> list[Outcome]:
    ids = conn.execute(text("SELECT id FROM notification ORDER BY id")).scalars()
    kinds = itertools.cycle(("sent", "failed", "expired"))
    return [Outcome(i, next(kinds), 1, time.time(), None) for i in ids]


def cancel_each(conn: Connection) -> None:
    for notification_id in conn.execute(text("SELECT id FROM notification")).scalars().all():
        statuses.cancel_notification(conn, notification_id)


NOTIFICATION_RUNS: dict[str, Callable[[Connection], Any]] = {
    "accept": lambda conn: statuses.accept_notifications(conn, [new_notification("k")] * 2),
    "release_notifications": lambda conn: statuses.release_notifications(conn, "http", 1000),
    "apply_notification_outcomes": lambda conn: statuses.apply_notification_outcomes(
        conn, notification_outcomes(conn)
    ),
    "expire_notifications": statuses.expire_notifications,
    "cancel_notification": cancel_each,
    "apply_receipts": lambda conn: statuses.apply_receipts(
        conn, receipts_for_all(conn, "notification")
    ),
    "apply_early_receipts": lambda conn: early_receipts_for_all(conn, "notification"),
}


def notification_states(conn: Connection) -> dict[int, tuple[str, bool]]:
    rows = conn.execute(
        text("SELECT id, status, released_at IS NOT NULL AS released FROM notification")
    )
    return {row.id: (row.status, row.released) for row in rows}


def test_every_notification_move_has_a_run_here():
    assert (
        set(NOTIFICATION_RUNS) == set(NOTIFICATION_MOVES) == set(statuses.NOTIFICATION_STATEMENTS)
    )


@pytest.mark.parametrize("name", sorted(NOTIFICATION_MOVES))
def test_a_notification_statement_makes_only_its_moves(engine: Engine, name: str):
    seed_notifications(engine)
    with engine.connect() as conn:
        before = notification_states(conn)

    with engine.begin() as conn:
        NOTIFICATION_RUNS[name](conn)

    with engine.connect() as conn:
        after = notification_states(conn)
        mismatches = notification_count_mismatches(conn)
    # A release changes no status, only released_at: a change is either.
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    moves = {(before[k][0] if k in before else None, v[0]) for k, v in changed.items()}
    move = NOTIFICATION_MOVES[name]
    assert changed, f"{name} changed nothing: the seed misses its sources"
    assert {m for m in moves if not move.allows(*m)} == set()
    assert mismatches == {}
