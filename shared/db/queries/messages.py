"""Named set-based statements on messages and the per-campaign counters they move.

Every statement that changes message statuses moves campaign_progress in the same
transaction, so the counters are exact without ever counting rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.types import BigInteger, Float, Integer, Text

from shared.messaging.envelopes import Outcome

MATERIALISE = text(
    """
    WITH inserted AS (
        INSERT INTO message (campaign_id, client_id)
        SELECT k.id, c.id
        FROM campaign k
        JOIN client c
          ON (cardinality(k.filter_tags) = 0 OR c.tags && k.filter_tags)
         AND (cardinality(k.filter_operator_codes) = 0
              OR c.operator_code = ANY(k.filter_operator_codes))
         AND (k.channel <> 'email' OR c.email IS NOT NULL)
         AND NOT (k.channel = ANY(c.opted_out))
        WHERE k.id = :campaign_id
        ORDER BY c.id
        ON CONFLICT (campaign_id, client_id) DO NOTHING
        RETURNING 1
    ), n AS (SELECT count(*) AS n FROM inserted)
    UPDATE campaign_progress p
       SET total = p.total + n.n, pending = p.pending + n.n
      FROM n
     WHERE p.campaign_id = :campaign_id
    RETURNING n.n
    """
)

CLAIM_DUE = text(
    """
    WITH due AS (
        SELECT id FROM message
         WHERE campaign_id = :campaign_id AND status = 'pending'
           AND (not_before IS NULL OR not_before <= now())
         ORDER BY id
         LIMIT :limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE message m
           SET status = 'queued', queued_at = now(), updated_at = now()
          FROM due
         WHERE m.id = due.id
        RETURNING m.id, m.client_id
    )
    SELECT claimed.id, c.phone, c.email, c.operator_code, c.timezone, c.attributes
      FROM claimed JOIN client c ON c.id = claimed.client_id
     ORDER BY claimed.id
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

# Only queued messages take an outcome: a replayed or duplicate outcome finds the message
# already final and changes nothing, so counts stay exact under redelivery. A "held"
# outcome (not sent because the campaign was paused) puts the message back to pending.
APPLY_OUTCOMES = text(
    """
    WITH v AS (
        SELECT id, CASE WHEN status = 'held' THEN 'pending' ELSE status END AS status,
               attempt, error, at
          FROM unnest(:ids, :statuses, :attempts, :errors, :ats)
               AS v(id, status, attempt, error, at)
    ), applied AS (
        UPDATE message m
           SET status = v.status, attempts = v.attempt, last_error = v.error,
               sent_at = CASE WHEN v.status = 'sent' THEN to_timestamp(v.at) END,
               queued_at = CASE WHEN v.status = 'pending' THEN NULL ELSE m.queued_at END,
               updated_at = now()
          FROM v
         WHERE m.id = v.id AND m.status = 'queued'
        RETURNING m.campaign_id, m.status, m.sent_at
    ), agg AS (
        SELECT campaign_id,
               count(*) AS n,
               count(*) FILTER (WHERE status = 'sent') AS sent,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'expired') AS expired,
               count(*) FILTER (WHERE status = 'pending') AS held,
               min(sent_at) AS first_sent, max(sent_at) AS last_sent
          FROM applied GROUP BY campaign_id
    )
    UPDATE campaign_progress p
       SET queued = p.queued - agg.n, sent = p.sent + agg.sent,
           failed = p.failed + agg.failed, expired = p.expired + agg.expired,
           pending = p.pending + agg.held,
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


def materialise(conn: Connection, campaign_id: int) -> int:
    """Create one pending message per matching client in one statement; returns how many."""
    return int(conn.execute(MATERIALISE, {"campaign_id": campaign_id}).scalar_one())


def claim_due(conn: Connection, campaign_id: int, limit: int) -> list[DueMessage]:
    """Mark up to `limit` due pending messages queued and return them with their client."""
    rows = conn.execute(CLAIM_DUE, {"campaign_id": campaign_id, "limit": limit}).all()
    if rows:
        move_counters(conn, campaign_id, from_pending=len(rows), to_queued=len(rows))
    return [DueMessage(*row) for row in rows]


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
            "errors": [o.error for o in outcomes],
            "ats": [o.at for o in outcomes],
        },
    )
    return sum(n for _, n in rows)


def finish_campaigns(conn: Connection) -> list[tuple[int, str]]:
    """Mark running campaigns with nothing left to send completed (or expired)."""
    return [(cid, status) for cid, status in conn.execute(FINISH_CAMPAIGNS)]
