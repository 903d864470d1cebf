"""Named set-based statements on messages and the per-campaign counters they move.

Every statement that changes message statuses moves campaign_progress in the same
transaction, so the counters are exact without ever counting rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.engine import Connection
from sqlalchemy.types import BigInteger, Float, Integer, Text

from shared.domain.text import storable_text
from shared.messaging.envelopes import Outcome

# Windowed campaigns pass each zone's next opening: a recipient whose window is shut waits
# with not_before at the opening, and one whose next opening is past ends_at is expired at
# once. Zones missing from the list (or clients without one) take `fallback`; without a
# window every message is due at once (not_before NULL).
MATERIALISE = text(
    """
    WITH opening AS (
        SELECT * FROM unnest(:zones, :openings) AS o(zone, at)
    ), inserted AS (
        INSERT INTO message (campaign_id, client_id, not_before, status)
        SELECT k.id, c.id, coalesce(o.at, :fallback),
               CASE WHEN coalesce(o.at, :fallback) >= k.ends_at THEN 'expired' ELSE 'pending' END
        FROM campaign k
        JOIN client c
          ON (cardinality(k.filter_tags) = 0 OR c.tags && k.filter_tags)
         AND (cardinality(k.filter_operator_codes) = 0
              OR c.operator_code = ANY(k.filter_operator_codes))
         AND (k.channel <> 'email' OR c.email IS NOT NULL)
         AND NOT (k.channel = ANY(c.opted_out))
        LEFT JOIN opening o ON o.zone = c.timezone
        WHERE k.id = :campaign_id
        ORDER BY c.id
        ON CONFLICT (campaign_id, client_id) DO NOTHING
        RETURNING status
    ), n AS (
        SELECT count(*) AS n, count(*) FILTER (WHERE status = 'expired') AS expired
          FROM inserted
    )
    UPDATE campaign_progress p
       SET total = p.total + n.n, pending = p.pending + n.n - n.expired,
           expired = p.expired + n.expired
      FROM n
     WHERE p.campaign_id = :campaign_id
    RETURNING n.n
    """
).bindparams(
    bindparam("zones", type_=ARRAY(Text)),
    bindparam("openings", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("fallback", type_=TIMESTAMP(timezone=True)),
)

# Due: pending with not_before passed, walked in due order along ix_message_due (whose key
# reads a NULL not_before as -infinity). A windowed campaign's messages without a not_before
# (held, or sent back for another try) wait until the scheduler gives them their opening.
DUE = """
    campaign_id = :campaign_id AND status = 'pending'
    AND coalesce(not_before, '-infinity'::timestamptz)
        BETWEEN CASE WHEN :windowed THEN 'epoch'::timestamptz ELSE '-infinity'::timestamptz END
            AND now()
"""

CLAIM_DUE = text(
    f"""
    WITH due AS (
        SELECT id FROM message
         WHERE {DUE}
         ORDER BY coalesce(not_before, '-infinity'::timestamptz), id
         LIMIT :limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE message m
           SET status = CASE WHEN m.client_id IS NULL THEN 'cancelled' ELSE 'queued' END,
               queued_at = now(), updated_at = now()
          FROM due
         WHERE m.id = due.id
        RETURNING m.id, m.client_id
    )
    SELECT claimed.id, c.phone, c.email, c.operator_code, c.timezone, c.attributes,
           claimed.client_id
      FROM claimed LEFT JOIN client c ON c.id = claimed.client_id
     ORDER BY claimed.id
    """
)

COUNT_DUE = text(
    f"""
    SELECT count(*) FROM (
        SELECT 1 FROM message WHERE {DUE} LIMIT :limit
    ) due
    """
)

MOVE_COUNTERS = text(
    """
    UPDATE campaign_progress
       SET pending = pending - :from_pending, queued = queued + :to_queued,
           expired = expired + :to_expired, cancelled = cancelled + :to_cancelled
     WHERE campaign_id = :campaign_id
    """
)

# Moves every still-pending message of the given campaigns to a final status.
CLOSE_PENDING = text(
    """
    WITH closed AS (
        UPDATE message SET status = :status, updated_at = now()
         WHERE campaign_id = ANY(:campaign_ids) AND status = 'pending'
        RETURNING campaign_id
    ), n AS (SELECT campaign_id, count(*) AS n FROM closed GROUP BY campaign_id)
    UPDATE campaign_progress p
       SET pending = p.pending - n.n,
           expired = p.expired + CASE WHEN :status = 'expired' THEN n.n ELSE 0 END,
           cancelled = p.cancelled + CASE WHEN :status = 'cancelled' THEN n.n ELSE 0 END
      FROM n
     WHERE p.campaign_id = n.campaign_id
    RETURNING p.campaign_id, n.n
    """
).bindparams(bindparam("campaign_ids", type_=ARRAY(BigInteger)))

# Only messages not yet final take an outcome: a replayed or duplicate outcome finds the
# message already final and changes nothing, so counts stay exact under redelivery. A
# "held" outcome (not sent because the campaign was paused) puts the message back to
# pending, without a not_before: the scheduler checks its send window again before
# releasing it. Pending rows qualify too: the scheduler publishes a batch before its claim
# commits, and locking them makes an early outcome wait for that commit instead of
# missing a row that is still pending in this statement's snapshot.
APPLY_OUTCOMES = text(
    """
    WITH v AS (
        SELECT id, CASE WHEN status = 'held' THEN 'pending' ELSE status END AS status,
               attempt, error, at
          FROM unnest(:ids, :statuses, :attempts, :errors, :ats)
               AS v(id, status, attempt, error, at)
    ), locked AS (
        SELECT m.id, m.status AS old_status
          FROM message m
         WHERE m.id = ANY(:ids) AND m.status IN ('pending', 'queued')
         ORDER BY m.id
           FOR UPDATE
    ), applied AS (
        UPDATE message m
           SET status = v.status, attempts = v.attempt, last_error = v.error,
               sent_at = CASE WHEN v.status = 'sent' THEN to_timestamp(v.at) END,
               queued_at = CASE WHEN v.status = 'pending' THEN NULL ELSE m.queued_at END,
               not_before = CASE WHEN v.status = 'pending' THEN NULL ELSE m.not_before END,
               updated_at = now()
          FROM v JOIN locked ON locked.id = v.id
         WHERE m.id = v.id
        RETURNING m.campaign_id, m.status, m.sent_at, locked.old_status
    ), agg AS (
        SELECT campaign_id,
               count(*) AS n,
               count(*) FILTER (WHERE old_status = 'queued') AS from_queued,
               count(*) FILTER (WHERE old_status = 'pending') AS from_pending,
               count(*) FILTER (WHERE status = 'sent') AS sent,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'expired') AS expired,
               count(*) FILTER (WHERE status = 'pending') AS held,
               min(sent_at) AS first_sent, max(sent_at) AS last_sent
          FROM applied GROUP BY campaign_id
    )
    UPDATE campaign_progress p
       SET queued = p.queued - agg.from_queued,
           pending = p.pending - agg.from_pending + agg.held,
           sent = p.sent + agg.sent, failed = p.failed + agg.failed,
           expired = p.expired + agg.expired,
           first_sent_at = LEAST(p.first_sent_at, agg.first_sent),
           last_sent_at = GREATEST(p.last_sent_at, agg.last_sent)
      FROM agg
     WHERE p.campaign_id = agg.campaign_id
    RETURNING p.campaign_id, agg.n
    """
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("statuses", type_=ARRAY(Text)),
    bindparam("attempts", type_=ARRAY(Integer)),
    bindparam("errors", type_=ARRAY(Text)),
    bindparam("ats", type_=ARRAY(Float)),
)

# A running campaign with nothing pending or queued is over: completed, or expired when its
# window closed on messages that could not be sent.
FINISH_CAMPAIGNS = text(
    """
    UPDATE campaign k
       SET status = CASE WHEN p.expired > 0 THEN 'expired' ELSE 'completed' END,
           finished_at = now(), updated_at = now()
      FROM campaign_progress p
     WHERE p.campaign_id = k.id AND k.status = 'running'
       AND p.pending = 0 AND p.queued = 0
    RETURNING k.id, k.status
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


def materialise(
    conn: Connection,
    campaign_id: int,
    openings: Mapping[str, dt.datetime] | None = None,
    fallback: dt.datetime | None = None,
) -> int:
    """Create one message per matching client in one statement; returns how many.

    With `openings` (zone -> next opening of the campaign's window) each message waits for its
    zone's opening (`fallback` for other zones); those opening after ends_at are expired.
    """
    openings = openings or {}
    params = {
        "campaign_id": campaign_id,
        "zones": list(openings),
        "openings": list(openings.values()),
        "fallback": fallback,
    }
    return int(conn.execute(MATERIALISE, params).scalar_one())


def claim_due(
    conn: Connection, campaign_id: int, limit: int, *, windowed: bool = False
) -> list[DueMessage]:
    """Mark up to `limit` due pending messages queued and return them with their client.

    A due message whose client was deleted since can never be sent: it is cancelled here.
    """
    params = {"campaign_id": campaign_id, "limit": limit, "windowed": windowed}
    rows = conn.execute(CLAIM_DUE, params).all()
    due = [DueMessage(*row) for row in rows if row.client_id is not None]
    if rows:
        move_counters(
            conn,
            campaign_id,
            from_pending=len(rows),
            to_queued=len(due),
            to_cancelled=len(rows) - len(due),
        )
    return due


def count_due(conn: Connection, campaign_id: int, limit: int, *, windowed: bool = False) -> int:
    """How many messages are due, counting no further than `limit`."""
    params = {"campaign_id": campaign_id, "limit": limit, "windowed": windowed}
    return int(conn.execute(COUNT_DUE, params).scalar_one())


def move_counters(
    conn: Connection,
    campaign_id: int,
    from_pending: int = 0,
    to_queued: int = 0,
    to_expired: int = 0,
    to_cancelled: int = 0,
) -> None:
    conn.execute(
        MOVE_COUNTERS,
        {
            "campaign_id": campaign_id,
            "from_pending": from_pending,
            "to_queued": to_queued,
            "to_expired": to_expired,
            "to_cancelled": to_cancelled,
        },
    )


def close_pending(conn: Connection, campaign_ids: Sequence[int], status: str) -> int:
    """Expire or cancel every pending message of the campaigns; returns how many."""
    if not campaign_ids:
        return 0
    rows = conn.execute(CLOSE_PENDING, {"campaign_ids": list(campaign_ids), "status": status})
    return sum(n for _, n in rows)


def apply_outcomes(conn: Connection, outcomes: Sequence[Outcome]) -> int:
    """Record final outcomes of queued messages in one statement; returns how many applied."""
    if not outcomes:
        return 0
    rows = conn.execute(
        APPLY_OUTCOMES,
        {
            "ids": [o.message_id for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "attempts": [o.attempt for o in outcomes],
            # A gateway's reply may hold NUL: kept readable, never a batch the database refuses.
            "errors": [None if o.error is None else storable_text(o.error) for o in outcomes],
            "ats": [o.at for o in outcomes],
        },
    )
    return sum(n for _, n in rows)


def finish_campaigns(conn: Connection) -> list[tuple[int, str]]:
    """Mark running campaigns with nothing left to send completed (or expired)."""
    return [(cid, status) for cid, status in conn.execute(FINISH_CAMPAIGNS)]
