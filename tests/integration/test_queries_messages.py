import threading
import time

from sqlalchemy import select, text

from shared.db.models import Campaign, CampaignProgress, Message
from shared.db.queries.statuses import (
    apply_outcomes,
    claim_due,
    close_pending,
    materialise,
)
from shared.db.queries.statuses import finish as finish_campaigns
from shared.messaging.envelopes import Outcome
from tests.support.factories import make_campaign, make_clients


def progress(engine, campaign_id):
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(CampaignProgress).where(CampaignProgress.campaign_id == campaign_id)
            )
            .mappings()
            .one()
        )
    return {k: row[k] for k in ("total", "pending", "queued", "sent", "failed")}


def test_materialise_takes_any_tag_and_any_operator_code(engine):
    make_clients(engine, 5, tags=["a"], operator_code="900", first_phone=79000000000)
    make_clients(engine, 4, tags=["b"], operator_code="901", first_phone=79100000000)
    make_clients(engine, 3, tags=["c"], operator_code="900", first_phone=79200000000)
    campaign_id = make_campaign(engine, filter_tags=["a", "b"], filter_operator_codes=["900"])

    with engine.begin() as conn:
        created = materialise(conn, campaign_id)

    assert created == 5
    assert progress(engine, campaign_id)["pending"] == 5


def test_materialise_twice_creates_nothing_more(engine):
    make_clients(engine, 3)
    campaign_id = make_campaign(engine)

    with engine.begin() as conn:
        materialise(conn, campaign_id)
        again = materialise(conn, campaign_id)

    assert again == 0
    assert progress(engine, campaign_id)["total"] == 3


def test_concurrent_claims_never_hand_out_a_message_twice(engine):
    make_clients(engine, 500)
    campaign_id = make_campaign(engine)
    with engine.begin() as conn:
        materialise(conn, campaign_id)
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer():
        while True:
            with engine.begin() as conn:
                due = claim_due(conn, campaign_id, 37)
                time.sleep(0.01)  # hold the row locks while the other claimer runs
            if not due:
                return
            with lock:
                claimed.extend(m.id for m in due)

    threads = [threading.Thread(target=claimer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(claimed) == len(set(claimed)) == 500
    assert progress(engine, campaign_id) == {
        "total": 500,
        "pending": 0,
        "queued": 500,
        "sent": 0,
        "failed": 0,
    }


def test_outcomes_apply_once_and_finish_the_campaign(engine):
    make_clients(engine, 4)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        due = claim_due(conn, campaign_id, 10)
    outcomes = [Outcome(m.id, "sent", 1, time.time()) for m in due[:3]]
    outcomes.append(Outcome(due[3].id, "failed", 1, time.time(), "HTTP 400: bad phone"))

    with engine.begin() as conn:
        first = apply_outcomes(conn, outcomes)
        replay = apply_outcomes(conn, outcomes)
        finished = finish_campaigns(conn)

    assert (first, replay) == (4, 0)
    assert progress(engine, campaign_id) == {
        "total": 4,
        "pending": 0,
        "queued": 0,
        "sent": 3,
        "failed": 1,
    }
    assert finished == [(campaign_id, "completed")]
    with engine.connect() as conn:
        error = conn.scalar(select(Message.last_error).where(Message.id == due[3].id))
    assert error == "HTTP 400: bad phone"


def test_close_pending_expires_what_was_not_released(engine):
    make_clients(engine, 10)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        claim_due(conn, campaign_id, 4)

    with engine.begin() as conn:
        closed = close_pending(conn, [campaign_id], "expired")

    assert closed == 6
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("SELECT status, count(*) FROM message WHERE campaign_id = :c GROUP BY 1"),
                {"c": campaign_id},
            ).all()
        )
        status = conn.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    assert counts == {"queued": 4, "expired": 6}
    assert status == "running"


def test_held_outcomes_put_messages_back_to_pending(engine):
    make_clients(engine, 3)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        due = claim_due(conn, campaign_id, 10)

    with engine.begin() as conn:
        apply_outcomes(conn, [Outcome(m.id, "held", 1, time.time()) for m in due])
        again = claim_due(conn, campaign_id, 10)

    assert sorted(m.id for m in again) == sorted(m.id for m in due)
    assert progress(engine, campaign_id)["queued"] == 3


def test_an_outcome_racing_the_release_commit_waits_for_it_and_counts(engine):
    make_clients(engine, 5)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
    applied: list[int] = []

    with engine.begin() as release:
        due = claim_due(release, campaign_id, 10)
        outcomes = [Outcome(m.id, "sent", 1, time.time()) for m in due]

        def apply_early():
            with engine.begin() as conn:
                applied.append(apply_outcomes(conn, outcomes))

        stats_writer = threading.Thread(target=apply_early)
        stats_writer.start()
        stats_writer.join(timeout=0.5)  # it must wait for the release to commit
        assert applied == []
    stats_writer.join(timeout=10)

    assert applied == [5]
    assert progress(engine, campaign_id) == {
        "total": 5,
        "pending": 0,
        "queued": 0,
        "sent": 5,
        "failed": 0,
    }


def test_an_outcome_for_a_release_that_rolled_back_still_counts_once(engine):
    make_clients(engine, 2)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
    with engine.connect() as conn:
        ids = [m.id for m in claim_due(conn, campaign_id, 10)]
        conn.rollback()  # the publish failed after the batch went out

    with engine.begin() as conn:
        apply_outcomes(conn, [Outcome(i, "sent", 1, time.time()) for i in ids])

    assert progress(engine, campaign_id) == {
        "total": 2,
        "pending": 0,
        "queued": 0,
        "sent": 2,
        "failed": 0,
    }


def test_a_due_message_whose_client_was_deleted_is_cancelled_not_stranded(engine):
    ids = make_clients(engine, 3)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        conn.execute(text("DELETE FROM client WHERE id = :id"), {"id": ids[0]})

    with engine.begin() as conn:
        due = claim_due(conn, campaign_id, 10)

    assert sorted(m.client_id for m in due if m.client_id is not None) == ids[1:]
    with engine.connect() as conn:
        cancelled = conn.scalar(
            text("SELECT cancelled FROM campaign_progress WHERE campaign_id = :c"),
            {"c": campaign_id},
        )
    assert progress(engine, campaign_id)["pending"] == 0
    assert progress(engine, campaign_id)["queued"] == 2
    assert cancelled == 1


def test_an_error_reply_holding_nul_or_a_lone_surrogate_is_kept_readable_not_refused(engine):
    make_clients(engine, 2)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        materialise(conn, campaign_id)
        due = claim_due(conn, campaign_id, 10)
    outcomes = [
        Outcome(due[0].id, "failed", 1, time.time(), "HTTP 400: bad\x00phone"),
        Outcome(due[1].id, "failed", 1, time.time(), "SMTP 550: \ud800 refused"),
    ]

    with engine.begin() as conn:
        applied = apply_outcomes(conn, outcomes)
    with engine.connect() as conn:
        errors = conn.execute(
            text("SELECT last_error FROM message WHERE campaign_id = :c ORDER BY id"),
            {"c": campaign_id},
        ).scalars()
        stored = list(errors)

    assert applied == 2
    assert stored == ["HTTP 400: bad\ufffdphone", "SMTP 550: \ufffd refused"]
