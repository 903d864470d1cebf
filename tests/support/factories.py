"""make_clients(), make_campaign(): rows straight into the database for query-level tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, insert

from shared.db.models import Campaign, CampaignProgress, Client


def make_clients(engine: Engine, count: int, **overrides: Any) -> list[int]:
    """Insert `count` clients with distinct phones; returns their ids."""
    start = overrides.pop("first_phone", 79000000000)
    rows = [
        {
            "phone": f"+{start + i}",
            "operator_code": overrides.get("operator_code", "900"),
            "tags": overrides.get("tags", ["news"]),
            "timezone": overrides.get("timezone", "UTC"),
            "email": overrides.get("email"),
            "attributes": overrides.get("attributes", {"name": f"client{i}"}),
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        return list(conn.execute(insert(Client).returning(Client.id), rows).scalars())


def make_campaign(engine: Engine, **overrides: Any) -> int:
    """Insert a campaign (starting now, ending in an hour) with its progress row."""
    now = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {
        "name": "test campaign",
        "channel": "http",
        "text": "Hello {{ name }}",
        "filter_tags": [],
        "filter_operator_codes": [],
        "starts_at": now,
        "ends_at": now + dt.timedelta(hours=1),
    }
    values.update(overrides)
    with engine.begin() as conn:
        campaign_id = conn.execute(
            insert(Campaign).values(**values).returning(Campaign.id)
        ).scalar_one()
        conn.execute(insert(CampaignProgress).values(campaign_id=campaign_id))
    return int(campaign_id)
