"""sender_health statements: record a sender's snapshot, read the live ones."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, RowMapping, text

# The same statement forgets senders silent for a day: the table holds the fleet, no more.
RECORD = text(
    """
    WITH forgotten AS (
        DELETE FROM sender_health WHERE seen_at < now() - interval '1 day'
    )
    INSERT INTO sender_health (instance, circuits, gateways, seen_at)
    VALUES (:instance, CAST(:circuits AS jsonb), CAST(:gateways AS jsonb), now())
    ON CONFLICT (instance) DO UPDATE
       SET circuits = EXCLUDED.circuits, gateways = EXCLUDED.gateways, seen_at = now()
    """
)

LIVE = text(
    """
    SELECT instance, circuits, gateways, seen_at
      FROM sender_health
     WHERE seen_at >= now() - make_interval(secs => :stale_s)
     ORDER BY instance
    """
)


def record_sender_health(
    conn: Connection, instance: str, circuits: Mapping[str, str], gateways: Mapping[str, str]
) -> None:
    conn.execute(
        RECORD,
        {
            "instance": instance,
            "circuits": json.dumps(dict(circuits)),
            "gateways": json.dumps(dict(gateways)),
        },
    )


def live_senders(conn: Connection, stale_s: float) -> list[RowMapping]:
    """Senders heard from within `stale_s` seconds, by name."""
    return list(conn.execute(LIVE, {"stale_s": stale_s}).mappings())
