"""Reads of messages: which are due (the fragment the claim uses too) and how many.

Statements that change a message's status live in `shared/db/queries/statuses.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Due: pending with not_before passed, walked in due order along ix_message_due (whose key
# reads a NULL not_before as -infinity). A windowed campaign's messages without a not_before
# (held, or sent back for another try) wait until the scheduler gives them their opening.
# The campaign's id range (kept at materialisation) lets the executor skip every partition
# outside it; a campaign without one (rows written by hand) is looked for everywhere.
DUE = """
    campaign_id = :campaign_id AND status = 'pending'
    AND id BETWEEN (SELECT coalesce(first_message_id, -9223372036854775808)
                      FROM campaign WHERE id = :campaign_id)
               AND (SELECT coalesce(last_message_id, 9223372036854775807)
                      FROM campaign WHERE id = :campaign_id)
    AND coalesce(not_before, '-infinity'::timestamptz)
        BETWEEN CASE WHEN :windowed THEN 'epoch'::timestamptz ELSE '-infinity'::timestamptz END
            AND now()
"""

COUNT_DUE = text(
    f"""
    SELECT count(*) FROM (
        SELECT 1 FROM message WHERE {DUE} LIMIT :limit
    ) due
    """
)


@dataclass(frozen=True, slots=True)
class DueMessage:
    id: int
    phone: str
    email: str | None
    operator_code: str
    timezone: str
    attributes: dict[str, Any]
    client_id: int | None = None


def count_due(conn: Connection, campaign_id: int, limit: int, *, windowed: bool = False) -> int:
    """How many messages are due, counting no further than `limit`."""
    params = {"campaign_id": campaign_id, "limit": limit, "windowed": windowed}
    return int(conn.execute(COUNT_DUE, params).scalar_one())
