"""The message table's partitions: made before materialisation, dropped by retention whole,
with every campaign's counters and figures kept after its rows are gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.scheduler.lifecycle import start_due
from services.scheduler.retention import run_retention
from shared.config import ConfigError, Settings
from shared.db.engine import ensure_database, make_engine
from shared.db.migrate import alembic_config
from shared.db.queries import partitions
from shared.db.queries.messages import COUNT_DUE, count_due
from tests.conftest import READ_TOKEN
from tests.support.factories import make_campaign, make_clients

pytestmark = pytest.mark.integration

SPAN = 10  # ids per partition here: a few recipients fill several


@pytest.fixture
def fresh_ids(engine: Engine) -> Engine:
    """The id sequence moved past every partition made so far: new ranges start from here."""
    with engine.begin() as conn:
        top = max(p.high or 0 for p in partitions.partitions(conn) if not p.is_overflow)
        conn.execute(text("SELECT setval('message_id_seq', :top, false)"), {"top": top})
    return engine


def started(engine: Engine, clients: int, first_phone: int, **campaign: Any) -> int:
    make_clients(engine, clients, first_phone=first_phone, tags=[f"t{first_phone}"])
    campaign_id = make_campaign(engine, filter_tags=[f"t{first_phone}"], **campaign)
    assert campaign_id in start_due(engine, SPAN)
    return campaign_id


def message_partitions_of(engine: Engine, campaign_id: int) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT DISTINCT tableoid::regclass::text FROM message WHERE campaign_id = :id"),
            {"id": campaign_id},
        )
        return set(rows.scalars())


def finish_long_ago(engine: Engine, campaign_id: int, days: int) -> None:
    """Every message sent (half delivered) through gateway 'a', the campaign completed."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                UPDATE message SET status = CASE WHEN id % 2 = 0 THEN 'delivered' ELSE 'sent' END,
                       sent_at = now() - make_interval(days => :days), gateway = 'a', segments = 2
                 WHERE campaign_id = :id
                """
            ),
            {"id": campaign_id, "days": days},
        )
        conn.execute(
            text(
                """
                UPDATE campaign SET status = 'completed',
                       finished_at = now() - make_interval(days => :days)
                 WHERE id = :id
                """
            ),
            {"id": campaign_id, "days": days},
        )


def figures(engine: Engine, settings, campaign_id: int) -> dict[str, Any]:
    api = create_app(settings, engine).test_client()
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    stats = api.get(f"/api/v1/campaigns/{campaign_id}/stats", headers=headers)
    timeline = api.get(f"/api/v1/campaigns/{campaign_id}/timeline", headers=headers)
    assert stats.status_code == 200 and timeline.status_code == 200
    keep = ("total", "sent", "delivered", "segments_sent", "by_gateway", "done")
    return {"stats": {k: stats.json[k] for k in keep}, "timeline": timeline.json}


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_materialisation_makes_the_partitions_its_ids_need_and_keeps_their_range(fresh_ids):
    campaign_id = started(fresh_ids, 25, 79200000000)

    with fresh_ids.connect() as conn:
        first, last = conn.execute(
            text("SELECT first_message_id, last_message_id FROM campaign WHERE id = :id"),
            {"id": campaign_id},
        ).one()
        ids = conn.execute(
            text("SELECT min(id), max(id), count(*) FROM message WHERE campaign_id = :id"),
            {"id": campaign_id},
        ).one()
        overflow = conn.execute(text("SELECT count(*) FROM message_overflow")).scalar_one()
    held_in = message_partitions_of(fresh_ids, campaign_id)
    assert ids == (first, last, 25)
    assert overflow == 0
    assert len(held_in) == 3  # 25 ids over ranges of 10
    assert "message_overflow" not in held_in


def test_retention_drops_an_old_campaigns_partitions_and_keeps_its_figures(fresh_ids, settings):
    old = started(fresh_ids, 25, 79210000000)  # ids over three ranges, the third not full
    finish_long_ago(fresh_ids, old, days=40)
    before = figures(fresh_ids, settings, old)
    dropped_before = counter("herald_retention_dropped_messages_total")
    # A running campaign's ids fill the third range: it keeps that partition.
    recent = started(fresh_ids, 5, 79220000000)

    dropped = run_retention(fresh_ids, days=30)

    with fresh_ids.connect() as conn:
        messages_dropped, progress_total = conn.execute(
            text(
                "SELECT k.messages_dropped, p.total FROM campaign k"
                " JOIN campaign_progress p ON p.campaign_id = k.id WHERE k.id = :id"
            ),
            {"id": old},
        ).one()
        left = conn.execute(
            text("SELECT count(*) FROM message WHERE campaign_id = :id"), {"id": old}
        ).scalar_one()
        names = {p.name for p in partitions.partitions(conn)}
    assert len(dropped) == 2
    assert sum(d.rows for d in dropped) == messages_dropped == 20
    assert left == 5
    assert not {d.name for d in dropped} & names
    assert progress_total == 25
    assert figures(fresh_ids, settings, old) == before
    shown = (
        create_app(settings, fresh_ids)
        .test_client()
        .get(f"/api/v1/campaigns/{old}", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    )
    assert shown.json["messages_dropped"] == 20
    assert len(message_partitions_of(fresh_ids, recent)) == 1
    assert counter("herald_retention_dropped_messages_total") - dropped_before == 20
    assert counter("herald_message_partitions") == len(names)


def test_a_partition_is_kept_while_any_campaign_in_it_is_recent_or_not_finished(fresh_ids):
    old = started(fresh_ids, 10, 79230000000)
    finish_long_ago(fresh_ids, old, days=40)
    recently = started(fresh_ids, 10, 79240000000)
    finish_long_ago(fresh_ids, recently, days=5)
    running = started(fresh_ids, 10, 79250000000)

    dropped = {d.name for d in run_retention(fresh_ids, days=30)}

    assert message_partitions_of(fresh_ids, old) == set()
    assert dropped
    assert message_partitions_of(fresh_ids, recently)
    assert message_partitions_of(fresh_ids, running)
    with fresh_ids.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM message WHERE campaign_id = ANY(:ids)"),
            {"ids": [recently, running]},
        ).scalar_one()
    assert count == 20


def test_without_a_retention_nothing_is_dropped(fresh_ids):
    old = started(fresh_ids, 20, 79260000000)
    finish_long_ago(fresh_ids, old, days=400)

    assert run_retention(fresh_ids, days=0) == []

    with fresh_ids.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM message WHERE campaign_id = :id"), {"id": old}
        ).scalar_one()
    assert count == 20


def test_ids_past_every_range_land_in_the_overflow_and_new_ranges_start_above_them(fresh_ids):
    campaign_id = make_campaign(fresh_ids)
    with fresh_ids.begin() as conn:
        top = max(p.high or 0 for p in partitions.partitions(conn) if not p.is_overflow)
        conn.execute(
            text("INSERT INTO message (id, campaign_id) VALUES (:id, :c)"),
            {"id": top + 5, "c": campaign_id},
        )
        conn.execute(text("SELECT setval('message_id_seq', :top, false)"), {"top": top})
    with fresh_ids.begin() as conn:
        made = partitions.ensure_ahead(conn, ahead=20, span=SPAN)
        found = {p.name: p for p in partitions.partitions(conn)}
        overflow = conn.execute(text("SELECT id FROM message_overflow")).scalars().all()

    assert overflow == [top + 5]
    assert made and found[made[0]].low == top + 6


def test_a_database_of_the_previous_schema_keeps_its_messages_and_counters(settings):
    url = settings.database_url + "_migration"
    ensure_database(url)
    scratch = make_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        command.upgrade(alembic_config(url), "0009")
        make_clients(scratch, 4, first_phone=79270000000)
        campaign_id = make_campaign(scratch)
        with scratch.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO message (campaign_id, client_id)"
                    " SELECT :c, id FROM client ORDER BY id"
                ),
                {"c": campaign_id},
            )

        command.upgrade(alembic_config(url), "head")

        with scratch.begin() as conn:
            conn.execute(
                text(
                    "UPDATE message SET status = 'queued' WHERE id = (SELECT min(id) FROM message)"
                )
            )
            rows = conn.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM message GROUP BY 1")
            ).all()
            progress = conn.execute(
                text("SELECT total, pending, queued FROM campaign_progress")
            ).one()
            bounds = conn.execute(
                text("SELECT last_message_id - first_message_id FROM campaign")
            ).scalar_one()
        assert rows == [("message_p0", 4)]
        assert tuple(progress) == (4, 3, 1)
        assert bounds == 3
    finally:
        scratch.dispose()


def test_the_retention_settings_are_checked():
    with pytest.raises(ConfigError, match="HERALD_MESSAGE_RETENTION_DAYS must be at least 0"):
        Settings.from_env({"HERALD_MESSAGE_RETENTION_DAYS": "-1"}, env_file=Path("/nonexistent"))
    with pytest.raises(ConfigError, match="HERALD_MESSAGE_PARTITION_IDS must be at least 1"):
        Settings.from_env({"HERALD_MESSAGE_PARTITION_IDS": "0"}, env_file=Path("/nonexistent"))


def test_a_campaigns_due_probe_visits_only_the_partitions_of_its_ids(fresh_ids):
    earlier = started(fresh_ids, 30, 79280000000)
    campaign_id = started(fresh_ids, 5, 79290000000)
    params = {"campaign_id": campaign_id, "limit": 100, "windowed": False}

    with fresh_ids.connect() as conn:
        plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + COUNT_DUE.text), params)
        lines = [row[0] for row in plan]
        due = count_due(conn, campaign_id, 100)
    scans = [line for line in lines if " on message_" in line]
    skipped = [line for line in scans if "never executed" in line]
    assert due == 5
    assert message_partitions_of(fresh_ids, earlier)
    assert len(scans) - len(skipped) == len(message_partitions_of(fresh_ids, campaign_id)) == 1
