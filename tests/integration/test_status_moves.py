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

from shared.db.models import Message
from shared.db.queries import statuses
from shared.domain.statuses import (
    ACTIONS,
    CAMPAIGN_MOVES,
    MESSAGE_MOVES,
    CampaignStatus,
    IllegalTransition,
    MessageStatus,
    transition,
)
from shared.messaging.envelopes import Outcome
from tests.support.factories import make_campaign, make_clients
from tests.support.progress import counter_mismatches

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
