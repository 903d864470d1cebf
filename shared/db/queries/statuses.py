"""Every statement that moves a message's, a notification's or a campaign's status, one per move.

The moves themselves (which status may become which, and who makes the move) are data in
`shared/domain/statuses.py`; `MESSAGE_STATEMENTS`, `NOTIFICATION_STATEMENTS` and
`CAMPAIGN_STATEMENTS` below map each move to its statement, and a test holds them to each
other. No statement here touches a counter: the database's triggers move campaign_progress and
notification_count with every status (migrations 0005, 0006), so they equal count(*) by status
whatever statement ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.engine import Connection
from sqlalchemy.types import BigInteger, Boolean, Float, Integer, Text

from shared.db.queries.audience import MATCHES_FILTER, REACHABLE, address_field
from shared.db.queries.campaigns import insert_campaign
from shared.db.queries.messages import DUE, DueMessage
from shared.db.queries.notifications import (
    WAKE_CHANNEL,
    Accepted,
    NewNotification,
    existing_by_key,
    forget_stale_keys,
)
from shared.domain.statuses import ACTIONS, CampaignStatus, NotificationStatus
from shared.domain.text import storable_text


class OutcomeRecord(Protocol):
    """What apply_outcomes reads of an outcome (the wire envelope has these fields)."""

    # Read-only members, so a frozen dataclass satisfies the protocol.
    @property
    def message_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def error(self) -> str | None: ...


# --- message moves ------------------------------------------------------------------------

# Once per campaign, in the transaction that starts it (the campaign's row is locked). A
# partitioned table has no unique key on (campaign_id, client_id), so a client who already
# has a message is left out here: a second run adds nothing (an anti-join on an index range
# that is empty for a new campaign). The ids given are kept on the campaign.
# Windowed campaigns pass each zone's next opening: a recipient whose window is shut waits
# with not_before at the opening, and one whose next opening is past ends_at is expired at
# once. Zones missing from the list (or clients without one) take `fallback`; without a
# window every message is due at once (not_before NULL).
MATERIALISE = text(
    f"""
    WITH opening AS (
        SELECT * FROM unnest(:zones, :openings) AS o(zone, at)
    ), inserted AS (
        INSERT INTO message (campaign_id, client_id, not_before, status)
        SELECT k.id, c.id, coalesce(o.at, :fallback),
               CASE WHEN coalesce(o.at, :fallback) >= k.ends_at THEN 'expired' ELSE 'pending' END
          FROM campaign k
          JOIN client c ON {MATCHES_FILTER} AND {REACHABLE}
          LEFT JOIN opening o ON o.zone = c.timezone
         WHERE k.id = :campaign_id
           AND NOT EXISTS (
               SELECT 1 FROM message m WHERE m.campaign_id = k.id AND m.client_id = c.id
           )
         ORDER BY c.id
        RETURNING id
    ), bounds AS (
        SELECT count(*) AS n, min(id) AS first, max(id) AS last FROM inserted
    ), kept AS (
        UPDATE campaign k
           SET first_message_id = least(k.first_message_id, b.first),
               last_message_id = greatest(k.last_message_id, b.last)
          FROM bounds b
         WHERE k.id = :campaign_id AND b.n > 0
    )
    SELECT n FROM bounds
    """
).bindparams(
    bindparam("zones", type_=ARRAY(Text)),
    bindparam("openings", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("fallback", type_=TIMESTAMP(timezone=True)),
)

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

# The arrays an outcome batch is passed as, to the messages' and the notifications' statement.
OUTCOME_ARRAYS = (
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("statuses", type_=ARRAY(Text)),
    bindparam("attempts", type_=ARRAY(Integer)),
    bindparam("errors", type_=ARRAY(Text)),
    bindparam("ats", type_=ARRAY(Float)),
    bindparam("gateways", type_=ARRAY(Text)),
    bindparam("segments", type_=ARRAY(Integer)),
)

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
               attempt, error, at, gateway, segments
          FROM unnest(:ids, :statuses, :attempts, :errors, :ats, :gateways, :segments)
               AS v(id, status, attempt, error, at, gateway, segments)
    ), locked AS (
        SELECT m.id
          FROM message m
         WHERE m.id = ANY(:ids) AND m.status IN ('pending', 'queued')
         ORDER BY m.id
           FOR UPDATE
    )
    UPDATE message m
       SET status = v.status, attempts = v.attempt, last_error = v.error,
           sent_at = CASE WHEN v.status = 'sent' THEN to_timestamp(v.at) END,
           queued_at = CASE WHEN v.status = 'pending' THEN NULL ELSE m.queued_at END,
           not_before = CASE WHEN v.status = 'pending' THEN NULL ELSE m.not_before END,
           gateway = coalesce(v.gateway, m.gateway), segments = coalesce(v.segments, m.segments),
           updated_at = now()
      FROM v JOIN locked ON locked.id = v.id
     WHERE m.id = v.id
    """
).bindparams(*OUTCOME_ARRAYS)

CLOSE_PENDING = text(
    """
    UPDATE message SET status = :status, updated_at = now()
     WHERE campaign_id = ANY(:campaign_ids) AND status = 'pending'
    """
).bindparams(bindparam("campaign_ids", type_=ARRAY(BigInteger)))

# An earlier end, or a window that only opens after it: those pending messages expire now.
EXPIRE_LATE = text(
    """
    UPDATE message SET status = 'expired', updated_at = now()
     WHERE campaign_id = :campaign_id AND status = 'pending'
       AND coalesce(not_before, '-infinity'::timestamptz) >= :ends_at
    """
)

# With a channel, only the messages of that channel's campaigns (an opt-out); without, all.
CANCEL_CLIENT_PENDING = text(
    """
    UPDATE message m SET status = 'cancelled', updated_at = now()
     WHERE m.client_id = :client_id AND m.status = 'pending'
       AND (CAST(:channel AS text) IS NULL
            OR m.campaign_id IN (SELECT id FROM campaign WHERE channel = :channel))
    """
)

# last_error stays until the next outcome replaces it; attempts start again from zero.
REQUEUE_FAILED = text(
    """
    UPDATE message
       SET status = 'pending', attempts = 0, not_before = NULL, queued_at = NULL,
           updated_at = now()
     WHERE campaign_id = :campaign_id AND status = 'failed'
    """
)


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
        "address_field": address_field(conn, campaign_id),
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
    rows = conn.execute(CLAIM_DUE, params).mappings()
    return [DueMessage(**row) for row in rows if row["client_id"] is not None]


def apply_outcomes(conn: Connection, outcomes: Sequence[OutcomeRecord]) -> int:
    """Record final outcomes of queued messages in one statement; returns how many applied."""
    if not outcomes:
        return 0
    return conn.execute(APPLY_OUTCOMES, outcome_arrays(outcomes)).rowcount


def outcome_arrays(outcomes: Sequence[OutcomeRecord]) -> dict[str, list[Any]]:
    """The OUTCOME_ARRAYS of a batch of outcomes."""
    return {
        "ids": [o.message_id for o in outcomes],
        "statuses": [o.status for o in outcomes],
        "attempts": [o.attempt for o in outcomes],
        # A gateway's reply may hold NUL: kept readable, never a batch the database refuses.
        "errors": [None if o.error is None else storable_text(o.error) for o in outcomes],
        "ats": [o.at for o in outcomes],
        "gateways": [getattr(o, "gateway", None) for o in outcomes],
        "segments": [getattr(o, "segments", None) for o in outcomes],
    }


def close_pending(conn: Connection, campaign_ids: Sequence[int], status: str) -> int:
    """Expire or cancel every pending message of the campaigns; returns how many."""
    if not campaign_ids:
        return 0
    params = {"campaign_ids": list(campaign_ids), "status": str(status)}
    return conn.execute(CLOSE_PENDING, params).rowcount


def expire_late(conn: Connection, campaign_id: int, ends_at: dt.datetime) -> int:
    """Expire pending messages whose not_before is at or after ends_at; returns how many."""
    return conn.execute(EXPIRE_LATE, {"campaign_id": campaign_id, "ends_at": ends_at}).rowcount


def cancel_client_pending(conn: Connection, client_id: int, channel: str | None = None) -> int:
    """Cancel the client's pending messages (on `channel` only, if given); returns how many."""
    params = {"client_id": client_id, "channel": channel}
    return conn.execute(CANCEL_CLIENT_PENDING, params).rowcount


def requeue_failed(conn: Connection, campaign_id: int) -> int:
    """Move the campaign's failed messages back to pending; returns how many."""
    return conn.execute(REQUEUE_FAILED, {"campaign_id": campaign_id}).rowcount


# --- notification moves -------------------------------------------------------------------

ALLOCATE_IDS = text("SELECT nextval('message_id_seq') FROM generate_series(1, :n)")

# A batch's ids are drawn first (a lone row takes its own), so each input row knows its id
# whether or not its key let it in. The wake-up for the scheduler rides in the same statement
# (PostgreSQL folds equal notices of one transaction and sends them at commit).
ACCEPT = text(
    """
    WITH inserted AS (
        INSERT INTO notification (id, channel, client_id, address, subject, text, html,
                                  template, not_before, expires_at, idempotency_key,
                                  request_hash)
        SELECT coalesce(v.id, nextval('message_id_seq')), v.channel, v.client_id, v.address,
               v.subject, v.text, v.html, v.template, v.not_before, v.expires_at, v.key, v.hash
          FROM unnest(:ids, :channels, :client_ids, :addresses, :subjects, :texts, :htmls,
                      :templates, :not_befores, :expires, :keys, :hashes)
               AS v(id, channel, client_id, address, subject, text, html, template,
                    not_before, expires_at, key, hash)
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, channel
    )
    SELECT id, pg_notify(:wake, channel) AS woken FROM inserted
    """
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("channels", type_=ARRAY(Text)),
    bindparam("client_ids", type_=ARRAY(BigInteger)),
    bindparam("addresses", type_=ARRAY(Text)),
    bindparam("subjects", type_=ARRAY(Text)),
    bindparam("texts", type_=ARRAY(Text)),
    bindparam("htmls", type_=ARRAY(Text)),
    bindparam("templates", type_=ARRAY(Text)),
    bindparam("not_befores", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("expires", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("keys", type_=ARRAY(Text)),
    bindparam("hashes", type_=ARRAY(Text)),
)

RELEASE_NOTIFICATIONS = text(
    """
    WITH due AS (
        SELECT id FROM notification
         WHERE channel = :channel AND status = 'queued' AND released_at IS NULL
           AND coalesce(not_before, '-infinity'::timestamptz) <= now() AND expires_at > now()
         ORDER BY coalesce(not_before, '-infinity'::timestamptz), id
         LIMIT :limit
         FOR UPDATE SKIP LOCKED
    )
    UPDATE notification n SET released_at = now(), updated_at = now()
      FROM due
     WHERE n.id = due.id
    RETURNING n.id, n.address, n.text, n.subject, n.html, n.expires_at, n.created_at,
              (SELECT c.operator_code FROM client c WHERE c.id = n.client_id) AS operator_code
    """
)

# As for messages: only a notification not yet final takes an outcome, so a duplicate or a
# replayed outcome changes nothing.
APPLY_NOTIFICATION_OUTCOMES = text(
    """
    WITH v AS (
        SELECT * FROM unnest(:ids, :statuses, :attempts, :errors, :ats, :gateways, :segments)
               AS v(id, status, attempt, error, at, gateway, segments)
    ), locked AS (
        SELECT n.id FROM notification n
         WHERE n.id = ANY(:ids) AND n.status = 'queued'
         ORDER BY n.id
           FOR UPDATE
    )
    UPDATE notification n
       SET status = v.status, attempts = v.attempt, last_error = v.error,
           sent_at = CASE WHEN v.status = 'sent' THEN to_timestamp(v.at) END,
           gateway = coalesce(v.gateway, n.gateway), segments = coalesce(v.segments, n.segments),
           updated_at = now()
      FROM v JOIN locked ON locked.id = v.id
     WHERE n.id = v.id
    """
).bindparams(*OUTCOME_ARRAYS)

EXPIRED_UNSENT = "not released before expires_at (send window shut or channel ceiling reached)"
EXPIRE_NOTIFICATIONS = text(
    """
    UPDATE notification SET status = 'expired', last_error = :error, updated_at = now()
     WHERE status = 'queued' AND released_at IS NULL AND expires_at <= now()
    """
)

CANCEL_NOTIFICATION = text(
    """
    UPDATE notification SET status = 'cancelled', updated_at = now()
     WHERE id = :id AND status = 'queued' AND released_at IS NULL
    RETURNING id
    """
)


@dataclass(frozen=True, slots=True)
class ReleasedNotification:
    id: int
    address: str
    text: str
    subject: str | None
    html: str | None
    expires_at: dt.datetime
    created_at: dt.datetime
    operator_code: str | None = None


def accept_notifications(conn: Connection, rows: Sequence[NewNotification]) -> list[Accepted]:
    """Store new notifications queued, one statement for all; one result per row, in order.

    A row whose idempotency key (within its 24 hours) names an earlier notification is not
    stored again: its result is the earlier one, a conflict if the request differed. Two
    requests racing with one key meet at the unique index, so only one row is ever written.
    A lone notification without a key costs one statement.
    """
    if not rows:
        return []
    ids = _insert(conn, rows)
    refused = [r.idempotency_key or "" for r, i in zip(rows, ids, strict=True) if i is None]
    earlier = existing_by_key(conn, refused) if refused else {}
    stale = [key for key, row in earlier.items() if row["is_stale"]]
    if stale:
        # Keys past their lifetime bind nothing: released, their rows are stored anew.
        forget_stale_keys(conn, stale)
        again = [i for i, (r, n) in enumerate(zip(rows, ids, strict=True)) if n is None]
        for index, new_id in zip(again, _insert(conn, [rows[i] for i in again]), strict=True):
            ids[index] = new_id
        earlier = existing_by_key(conn, [rows[i].idempotency_key or "" for i in again])
    results = []
    for row, new_id in zip(rows, ids, strict=True):
        if new_id is not None:
            results.append(Accepted(new_id, str(NotificationStatus.QUEUED), is_new=True))
            continue
        # Refused rows are those whose key an earlier notification holds.
        found = earlier[row.idempotency_key or ""]
        conflict = found["request_hash"] != row.request_hash
        results.append(Accepted(found["id"], found["status"], False, is_conflict=conflict))
    return results


def _insert(conn: Connection, rows: Sequence[NewNotification]) -> list[int | None]:
    """Insert the rows; each one's new id, or None where its key was taken."""
    drawn: list[int | None] = [None]
    if len(rows) > 1:
        drawn = list(conn.execute(ALLOCATE_IDS, {"n": len(rows)}).scalars())
    params = {
        "ids": drawn,
        "channels": [r.channel for r in rows],
        "client_ids": [r.client_id for r in rows],
        "addresses": [r.address for r in rows],
        "subjects": [r.subject for r in rows],
        "texts": [r.text for r in rows],
        "htmls": [r.html for r in rows],
        "templates": [r.template for r in rows],
        "not_befores": [r.not_before for r in rows],
        "expires": [r.expires_at for r in rows],
        "keys": [r.idempotency_key for r in rows],
        "hashes": [r.request_hash for r in rows],
        "wake": WAKE_CHANNEL,
    }
    inserted = list(conn.execute(ACCEPT, params).scalars())
    if len(rows) == 1:
        return [inserted[0] if inserted else None]
    kept = set(inserted)
    return [i if i in kept else None for i in drawn]


def release_notifications(conn: Connection, channel: str, limit: int) -> list[ReleasedNotification]:
    """Mark up to `limit` due notifications of the channel released; returns them in id order."""
    rows = conn.execute(RELEASE_NOTIFICATIONS, {"channel": channel, "limit": limit}).mappings()
    return sorted((ReleasedNotification(**row) for row in rows), key=lambda n: n.id)


def apply_notification_outcomes(conn: Connection, outcomes: Sequence[OutcomeRecord]) -> int:
    """Record final outcomes of queued notifications in one statement; returns how many."""
    # "held" is for paused campaigns and never names a notification.
    final = [o for o in outcomes if o.status != "held"]
    if not final:
        return 0
    return conn.execute(APPLY_NOTIFICATION_OUTCOMES, outcome_arrays(final)).rowcount


def expire_notifications(conn: Connection) -> int:
    """Expire queued notifications not released before their expires_at; returns how many."""
    return conn.execute(EXPIRE_NOTIFICATIONS, {"error": EXPIRED_UNSENT}).rowcount


def cancel_notification(conn: Connection, notification_id: int) -> bool:
    """Cancel a queued notification not yet released; whether it was."""
    return conn.execute(CANCEL_NOTIFICATION, {"id": notification_id}).first() is not None


# --- receipt moves ------------------------------------------------------------------------

RECEIPT_ARRAYS = (
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("statuses", type_=ARRAY(Text)),
    bindparam("errors", type_=ARRAY(Text)),
    bindparam("ats", type_=ARRAY(Float)),
    bindparam("opt_outs", type_=ARRAY(Boolean)),
)

# Locked first, whatever their status: an outcome being applied elsewhere either committed
# before (the row is sent, the receipt applies) or waits for this transaction (the receipt is
# kept early, and that outcome's next statement sees it). Either way none is lost.
LOCK_RECEIVERS = {
    table: text(
        f"SELECT id, status, client_id FROM {table} WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
    ).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
    for table in ("message", "notification")
}

# The gateway's error is kept only when it was not delivered; a delivered message keeps the
# error of an earlier attempt, if any.
APPLY_RECEIPTS = {
    table: text(
        f"""
        WITH v AS (
            SELECT * FROM unnest(:ids, :statuses, :errors, :ats, :opt_outs)
                   AS v(id, status, error, at, opt_out)
        )
        UPDATE {table} m
           SET status = v.status,
               last_error = CASE WHEN v.status = 'undelivered' THEN v.error
                                 ELSE m.last_error END,
               delivered_at = to_timestamp(v.at), updated_at = now()
          FROM v
         WHERE m.id = v.id AND m.status = 'sent'
        RETURNING m.id, m.client_id, v.opt_out, m.gateway, m.status
        """
    ).bindparams(*RECEIPT_ARRAYS)
    for table in ("message", "notification")
}

KEEP_EARLY_RECEIPTS = text(
    """
    INSERT INTO early_receipt (id, status, error, at, opt_out)
    SELECT id, status, error, to_timestamp(at), opt_out
      FROM unnest(:ids, :statuses, :errors, :ats, :opt_outs) AS v(id, status, error, at, opt_out)
    ON CONFLICT (id) DO NOTHING
    """
).bindparams(*RECEIPT_ARRAYS)

# Run after outcomes were applied, in their transaction: receipts that came first now apply.
APPLY_EARLY_RECEIPTS = {
    table: text(
        f"""
        WITH r AS (
            DELETE FROM early_receipt e
             WHERE e.id = ANY(:ids)
               AND EXISTS (SELECT 1 FROM {table} m WHERE m.id = e.id AND m.status = 'sent')
            RETURNING e.*
        )
        UPDATE {table} m
           SET status = r.status,
               last_error = CASE WHEN r.status = 'undelivered' THEN r.error
                                 ELSE m.last_error END,
               delivered_at = r.at, updated_at = now()
          FROM r
         WHERE m.id = r.id
        RETURNING m.id, m.client_id, r.opt_out, m.gateway, m.status
        """
    ).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
    for table in ("message", "notification")
}


class ReceiptRecord(Protocol):
    """What apply_receipts reads of a receipt (shared/domain/receipts.Receipt has these)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def at(self) -> float: ...
    @property
    def opt_out(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReceiptsApplied:
    """What became of a batch of receipts. `opt_out_clients`: clients to opt out of e-mail."""

    messages: int = 0
    notifications: int = 0
    early: int = 0  # kept until their sent outcome is applied
    ignored: int = 0  # already final: a repeat, or a message that failed or expired
    unknown: int = 0  # no message or notification has the id
    opt_out_clients: tuple[int, ...] = ()
    # Per gateway that had taken them: (delivered, undelivered) among those applied.
    by_gateway: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def apply_receipts(conn: Connection, receipts: Sequence[ReceiptRecord]) -> ReceiptsApplied:
    """Apply receipts to messages and notifications, or keep those that came early.

    Only a `sent` row takes a receipt, so a repeated receipt changes nothing; within one
    batch the first receipt of an id counts. Five statements whatever the batch's size.
    """
    first: dict[int, ReceiptRecord] = {}
    for receipt in receipts:
        first.setdefault(receipt.id, receipt)
    if not first:
        return ReceiptsApplied()
    ids = sorted(first)
    found: dict[str, dict[int, str]] = {}
    for table, statement in LOCK_RECEIVERS.items():
        found[table] = {row.id: row.status for row in conn.execute(statement, {"ids": ids})}
    applied: dict[str, list[Any]] = {}
    for table, statement in APPLY_RECEIPTS.items():
        take = [first[i] for i in ids if found[table].get(i) == "sent"]
        applied[table] = list(conn.execute(statement, _receipt_arrays(take))) if take else []
    open_statuses = ("pending", "queued")
    early = [
        first[i]
        for i in ids
        if found["message"].get(i) in open_statuses or found["notification"].get(i) == "queued"
    ]
    if early:
        conn.execute(KEEP_EARLY_RECEIPTS, _receipt_arrays(early))
    known = len(found["message"]) + len(found["notification"])
    rows = applied["message"] + applied["notification"]
    return ReceiptsApplied(
        messages=len(applied["message"]),
        notifications=len(applied["notification"]),
        early=len(early),
        ignored=known - len(rows) - len(early),
        unknown=len(ids) - known,
        opt_out_clients=_opt_outs(rows),
        by_gateway=_by_gateway(rows),
    )


def apply_early_receipts(conn: Connection, ids: Sequence[int]) -> ReceiptsApplied:
    """Apply the kept receipts of rows among `ids` that are now sent (same transaction)."""
    if not ids:
        return ReceiptsApplied()
    applied = {
        table: list(conn.execute(statement, {"ids": list(ids)}))
        for table, statement in APPLY_EARLY_RECEIPTS.items()
    }
    return ReceiptsApplied(
        messages=len(applied["message"]),
        notifications=len(applied["notification"]),
        opt_out_clients=_opt_outs(applied["message"] + applied["notification"]),
        by_gateway=_by_gateway(applied["message"] + applied["notification"]),
    )


FORGET_EARLY_RECEIPTS = text(
    "DELETE FROM early_receipt WHERE received_at < now() - make_interval(days => :days)"
)


def forget_early_receipts(conn: Connection, days: int) -> int:
    """Drop kept receipts older than `days`: their message failed or expired, never sent."""
    return conn.execute(FORGET_EARLY_RECEIPTS, {"days": days}).rowcount


def _receipt_arrays(receipts: Sequence[ReceiptRecord]) -> dict[str, list[Any]]:
    return {
        "ids": [r.id for r in receipts],
        "statuses": [r.status for r in receipts],
        "errors": [None if r.error is None else storable_text(r.error) for r in receipts],
        "ats": [r.at for r in receipts],
        "opt_outs": [r.opt_out for r in receipts],
    }


def _by_gateway(rows: Sequence[Any]) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for row in rows:
        if row.gateway is not None:
            delivered, undelivered = counts.get(row.gateway, (0, 0))
            is_delivered = row.status == "delivered"
            counts[row.gateway] = (delivered + is_delivered, undelivered + (not is_delivered))
    return counts


def _opt_outs(rows: Sequence[Any]) -> tuple[int, ...]:
    return tuple(sorted({row.client_id for row in rows if row.opt_out and row.client_id}))


# --- campaign moves -----------------------------------------------------------------------

START = text(
    """
    UPDATE campaign SET status = 'running', started_at = now(), updated_at = now()
     WHERE id = :campaign_id AND status = 'scheduled'
    """
)

# A running campaign with nothing pending or queued is over: completed, or expired when its
# window closed on messages that could not be sent.
FINISH = text(
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

# A paused campaign whose end has passed can never resume: it is over.
EXPIRE_IDLE = text(
    """
    UPDATE campaign k SET status = 'expired', finished_at = now(), updated_at = now()
      FROM campaign_progress p
     WHERE p.campaign_id = k.id AND k.status = 'paused' AND k.ends_at <= now()
       AND p.pending = 0 AND p.queued = 0
    """
)

# Failed messages were put back to pending: a completed campaign runs again to send them.
REOPEN = text(
    """
    UPDATE campaign SET status = 'running', finished_at = NULL, updated_at = now()
     WHERE id = :campaign_id AND status = 'completed' AND ends_at > now()
    """
)

SET_ACTION_STATUS = text(
    """
    UPDATE campaign
       SET status = :status, updated_at = now(),
           finished_at = CASE WHEN :status = 'cancelled' THEN now() ELSE finished_at END
     WHERE id = :campaign_id
    RETURNING *
    """
)


def start(conn: Connection, campaign_id: int) -> None:
    conn.execute(START, {"campaign_id": campaign_id})


def finish(conn: Connection) -> list[tuple[int, str]]:
    """Mark running campaigns with nothing left to send completed (or expired)."""
    return [(row.id, row.status) for row in conn.execute(FINISH)]


def expire_idle(conn: Connection) -> int:
    return conn.execute(EXPIRE_IDLE).rowcount


def reopen(conn: Connection, campaign_id: int) -> bool:
    """Run a completed campaign again (its failed messages were requeued); whether it was."""
    return conn.execute(REOPEN, {"campaign_id": campaign_id}).rowcount > 0


def set_action_status(conn: Connection, campaign_id: int, status: CampaignStatus) -> Any:
    """Apply an operator's pause, resume or cancel (already checked by domain.transition)."""
    params = {"campaign_id": campaign_id, "status": str(status)}
    return conn.execute(SET_ACTION_STATUS, params).mappings().one()


MESSAGE_STATEMENTS: Mapping[str, Callable[..., Any]] = {
    "materialise": materialise,
    "claim_due": claim_due,
    "apply_outcomes": apply_outcomes,
    "close_pending": close_pending,
    "expire_late": expire_late,
    "cancel_client_pending": cancel_client_pending,
    "requeue_failed": requeue_failed,
    "apply_receipts": apply_receipts,
    "apply_early_receipts": apply_early_receipts,
}
NOTIFICATION_STATEMENTS: Mapping[str, Callable[..., Any]] = {
    "accept": accept_notifications,
    "release_notifications": release_notifications,
    "apply_notification_outcomes": apply_notification_outcomes,
    "expire_notifications": expire_notifications,
    "cancel_notification": cancel_notification,
    "apply_receipts": apply_receipts,
    "apply_early_receipts": apply_early_receipts,
}
CAMPAIGN_STATEMENTS: Mapping[str, Callable[..., Any]] = {
    "create": insert_campaign,  # scheduled: the column's default
    "start": start,
    "finish": finish,
    "expire_idle": expire_idle,
    "reopen": reopen,
    **{action: set_action_status for action in ACTIONS},
}
