"""Who a campaign leaves out, and why, is counted when it starts and shown in its stats."""

from __future__ import annotations

from sqlalchemy import Engine, text

from services.api.app import create_app
from services.scheduler.lifecycle import start_due
from shared.config import Settings
from tests.conftest import READ_TOKEN
from tests.support.factories import make_campaign, make_clients


def test_an_email_campaign_counts_clients_without_an_address_or_opted_out(engine: Engine, settings):
    make_clients(engine, 3, email="someone@example.org", first_phone=79160000000)
    make_clients(engine, 2, email=None, first_phone=79160000100)
    opted = make_clients(engine, 1, email="gone@example.org", first_phone=79160000200)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE client SET opted_out = '{email}' WHERE id = :id"), {"id": opted[0]}
        )
    campaign_id = make_campaign(engine, channel="email", subject="Hi")

    start_due(engine, Settings().message_partition_ids)
    api = create_app(settings, engine).test_client()
    stats = api.get(
        f"/api/v1/campaigns/{campaign_id}/stats",
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    ).json

    assert stats["total"] == 3
    assert stats["left_out"] == {"no_address": 2, "opted_out": 1}
