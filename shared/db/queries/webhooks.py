"""Webhook statements: subscriptions (insert, update, delete, read, page), and for the deliverer
the lease of due event rows, the record of an attempt, disabling, the backlog and pruning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, text, update

from shared.db.models import Webhook, WebhookAttempt

WEBHOOK = Webhook.__table__
PUBLIC_COLUMNS = [c for c in WEBHOOK.c if c.name != "secret"]
ATTEMPT_COLUMNS = [
    WebhookAttempt.id,
    WebhookAttempt.attempted_at,
    WebhookAttempt.event_id,
    WebhookAttempt.events,
    WebhookAttempt.status_code,
    WebhookAttempt.latency_ms,
    WebhookAttempt.error,
]


def insert_webhook(conn: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Insert a subscription and return it, secret included (shown this once)."""
    stmt = insert(Webhook).values(**values).returning(*WEBHOOK.c)
    return conn.execute(stmt).mappings().one()


def update_webhook(
    conn: Connection, webhook_id: int, values: Mapping[str, Any]
) -> RowMapping | None:
    """Set the given fields; enabling clears the failure and disabling marks. None: no such id."""
    changes = dict(values)
    if changes.get("enabled") is True:
        changes.update(failing_since=None, disabled_at=None, disabled_reason=None)
    stmt = (
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(**changes, updated_at=func.now())
        .returning(*PUBLIC_COLUMNS)
    )
    return conn.execute(stmt).mappings().first()


def delete_webhook(conn: Connection, webhook_id: int) -> bool:
    """Delete a subscription; its owed events and attempts go with it (ON DELETE CASCADE)."""
    deleted = conn.execute(delete(Webhook).where(Webhook.id == webhook_id).returning(Webhook.id))
    return deleted.first() is not None


def get_webhook(conn: Connection, webhook_id: int) -> RowMapping | None:
    stmt = select(*PUBLIC_COLUMNS).where(Webhook.id == webhook_id)
    return conn.execute(stmt).mappings().first()


def list_webhooks(conn: Connection, after: int | None, limit: int) -> list[RowMapping]:
    """A keyset page: subscriptions with an id above `after`, in id order."""
    stmt = select(*PUBLIC_COLUMNS).order_by(Webhook.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Webhook.id > after)
    return list(conn.execute(stmt).mappings())


def list_attempts(
    conn: Connection, webhook_id: int, before: int | None, limit: int
) -> list[RowMapping]:
    """A keyset page of a subscription's attempts, newest first, with an id below `before`."""
    stmt = (
        select(*ATTEMPT_COLUMNS)
        .where(WebhookAttempt.webhook_id == webhook_id)
        .order_by(WebhookAttempt.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(WebhookAttempt.id < before)
    return list(conn.execute(stmt).mappings())


# The oldest due row of each enabled subscription not in flight here, oldest subscription
# first; rows another deliverer holds are skipped, and the lease pushes next_attempt_at past
# the POST's timeout so a crash mid-POST only delays the retry.
LEASE = text("""
WITH due AS (
    SELECT DISTINCT ON (e.webhook_id) e.id
      FROM webhook_event e JOIN webhook w ON w.id = e.webhook_id AND w.enabled
     WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL
       AND e.next_attempt_at <= now()
       AND NOT (e.webhook_id = ANY(CAST(:busy AS bigint[])))
     ORDER BY e.webhook_id, e.next_attempt_at, e.id
), oldest AS (
    SELECT e.id FROM webhook_event e JOIN due USING (id)
     WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= now()
     ORDER BY e.next_attempt_at, e.id
     LIMIT :limit
       FOR UPDATE OF e SKIP LOCKED
)
UPDATE webhook_event e
   SET next_attempt_at = now() + make_interval(secs => :lease_s)
  FROM oldest, webhook w
 WHERE e.id = oldest.id AND w.id = e.webhook_id
RETURNING e.id, e.webhook_id, e.payload, e.events, e.created_at, e.attempts,
          w.url, w.secret
""")

RECORD_ATTEMPT = text("""
INSERT INTO webhook_attempt (webhook_id, event_id, attempted_at, status_code, latency_ms,
                             error, events)
SELECT id, :event_id, :attempted_at, :status_code, :latency_ms, :error, :events
  FROM webhook WHERE id = :webhook_id
""")

MARK_DELIVERED = text("""
WITH done AS (
    UPDATE webhook_event SET delivered_at = now(), attempts = attempts + 1, last_error = NULL
     WHERE id = :event_id AND delivered_at IS NULL
    RETURNING webhook_id
)
UPDATE webhook SET failing_since = NULL
 WHERE id IN (SELECT webhook_id FROM done) AND failing_since IS NOT NULL
""")

MARK_FAILED = text("""
UPDATE webhook_event
   SET attempts = attempts + 1, last_error = :error,
       next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
       given_up_at = CASE WHEN :next_attempt_at IS NULL THEN now() END
 WHERE id = :event_id AND delivered_at IS NULL
""")

MARK_FAILING = text("""
UPDATE webhook SET failing_since = COALESCE(failing_since, :since)
 WHERE id = :webhook_id
RETURNING failing_since, enabled
""")

DISABLE = text("""
UPDATE webhook SET enabled = false, disabled_at = now(), disabled_reason = :reason,
                   updated_at = now()
 WHERE id = :webhook_id AND enabled
""")

BACKLOG = text("""
SELECT count(*) AS owed, EXTRACT(EPOCH FROM now() - min(created_at)) AS oldest_s
  FROM webhook_event
 WHERE delivered_at IS NULL AND given_up_at IS NULL
""")

PRUNE_EVENTS = text("""
DELETE FROM webhook_event
 WHERE (delivered_at < now() - make_interval(days => :days))
    OR (given_up_at < now() - make_interval(days => :days))
""")

PRUNE_ATTEMPTS = text("""
DELETE FROM webhook_attempt WHERE attempted_at < now() - make_interval(days => :days)
""")


def lease_due(
    conn: Connection, busy: Collection[int], limit: int, lease_s: float
) -> list[RowMapping]:
    """Lease up to `limit` due rows, one per subscription, none of the `busy` subscriptions."""
    params = {"busy": list(busy), "limit": limit, "lease_s": lease_s}
    return list(conn.execute(LEASE, params).mappings())


def record_attempt(conn: Connection, attempt: Mapping[str, Any]) -> None:
    conn.execute(RECORD_ATTEMPT, dict(attempt))


def mark_delivered(conn: Connection, event_id: int) -> None:
    """Mark the row delivered and clear its subscription's failure mark."""
    conn.execute(MARK_DELIVERED, {"event_id": event_id})


def mark_failed(
    conn: Connection, event_id: int, error: str, next_attempt_at: dt.datetime | None
) -> None:
    """Schedule the row's next attempt, or give it up when `next_attempt_at` is None."""
    params = {"event_id": event_id, "error": error, "next_attempt_at": next_attempt_at}
    conn.execute(MARK_FAILED, params)


def mark_failing(conn: Connection, webhook_id: int, since: dt.datetime) -> dt.datetime | None:
    """Set failing_since unless already set; return it (None: the subscription is gone)."""
    row = conn.execute(MARK_FAILING, {"webhook_id": webhook_id, "since": since}).first()
    return None if row is None else row.failing_since


def disable_webhook(conn: Connection, webhook_id: int, reason: str) -> bool:
    """Disable an enabled subscription; False when it already was disabled or is gone."""
    return conn.execute(DISABLE, {"webhook_id": webhook_id, "reason": reason}).rowcount > 0


def backlog(conn: Connection) -> tuple[int, float]:
    """Event rows owed, and the age in seconds of the oldest (0 when none)."""
    row = conn.execute(BACKLOG).one()
    return int(row.owed), float(row.oldest_s or 0.0)


def prune(conn: Connection, days: int) -> int:
    """Delete delivered and given-up rows and attempts older than `days`; rows deleted."""
    events = conn.execute(PRUNE_EVENTS, {"days": days}).rowcount
    return events + conn.execute(PRUNE_ATTEMPTS, {"days": days}).rowcount
