"""Notifications as the API writes and reads them: new rows, idempotency keys, pages, counts.

The status moves (accept, release, outcomes, expiry, cancel) are in statuses.py; this module
holds what is not a move: reading, and keys that no longer bind after their 24 hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.types import Text

# A key binds its notification for this long; after it, the same key makes a new one.
KEY_LIFETIME = dt.timedelta(hours=24)
# Accepts notify it with the channel as payload, so the scheduler's releaser wakes at commit
# (it also polls, should a notice be missed).
WAKE_CHANNEL = "herald_notifications"


@dataclass(frozen=True, slots=True)
class NewNotification:
    """One accepted notification, addressed and rendered, ready to be stored."""

    channel: str
    address: str
    text: str
    expires_at: dt.datetime
    client_id: int | None = None
    subject: str | None = None
    html: str | None = None
    template: str | None = None
    not_before: dt.datetime | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What storing a NewNotification came to: a new row, the earlier one of its key, or a
    conflict (its key names an earlier notification with another body)."""

    id: int
    status: str
    is_new: bool
    is_conflict: bool = False


COLUMNS = """
    id, channel, client_id, address, subject, text, html, template, status, attempts,
    last_error, not_before, expires_at, released_at, created_at, updated_at, sent_at
"""

BY_KEYS = text(
    """
    SELECT id, status, idempotency_key, request_hash,
           created_at <= now() - :lifetime AS is_stale
      FROM notification
     WHERE idempotency_key = ANY(:keys)
    """
).bindparams(bindparam("keys", type_=ARRAY(Text)))

# Keys past their lifetime bind nothing: released before the insert, so it takes them anew.
FORGET_STALE_KEYS = text(
    """
    UPDATE notification SET idempotency_key = NULL, request_hash = NULL
     WHERE idempotency_key = ANY(:keys) AND created_at <= now() - :lifetime
    """
).bindparams(bindparam("keys", type_=ARRAY(Text)))

FORGET_ALL_STALE_KEYS = text(
    """
    UPDATE notification SET idempotency_key = NULL, request_hash = NULL
     WHERE id IN (SELECT id FROM notification
                   WHERE idempotency_key IS NOT NULL AND created_at <= now() - :lifetime
                   LIMIT :limit)
    """
)

GET = text(f"SELECT {COLUMNS} FROM notification WHERE id = :id")

PAGE = text(
    f"""
    SELECT {COLUMNS} FROM notification
     WHERE (CAST(:status AS text) IS NULL OR status = :status)
       AND id > coalesce(CAST(:after AS bigint), 0)
     ORDER BY id
     LIMIT :limit
    """
)

COUNTS = text(
    """
    SELECT channel, status, sum(n) AS n FROM notification_count
     GROUP BY channel, status HAVING sum(n) <> 0
    """
)


def existing_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, Any]:
    """Notifications holding these idempotency keys, by key."""
    if not keys:
        return {}
    rows = conn.execute(BY_KEYS, {"keys": list(keys), "lifetime": KEY_LIFETIME}).mappings()
    return {row["idempotency_key"]: row for row in rows}


def forget_stale_keys(conn: Connection, keys: Sequence[str]) -> None:
    if keys:
        conn.execute(FORGET_STALE_KEYS, {"keys": list(keys), "lifetime": KEY_LIFETIME})


def forget_all_stale_keys(conn: Connection, limit: int = 10_000) -> int:
    """Release up to `limit` keys past their lifetime (housekeeping keeps the index small)."""
    params = {"lifetime": KEY_LIFETIME, "limit": limit}
    return conn.execute(FORGET_ALL_STALE_KEYS, params).rowcount


def get_notification(conn: Connection, notification_id: int) -> Any | None:
    return conn.execute(GET, {"id": notification_id}).mappings().one_or_none()


def list_notifications(
    conn: Connection, status: str | None, after: int | None, limit: int
) -> list[Any]:
    """A keyset page: notifications with an id above `after`, in id order."""
    params = {"status": status, "after": after, "limit": limit}
    return list(conn.execute(PAGE, params).mappings())


def notification_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Notifications by channel, then status (from the trigger-kept counters)."""
    counts: dict[str, dict[str, int]] = {}
    for row in conn.execute(COUNTS):
        counts.setdefault(row.channel, {})[row.status] = int(row.n)
    return counts
