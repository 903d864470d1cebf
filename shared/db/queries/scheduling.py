"""Statements the scheduler reads and keeps its budgets with: what to start, release and close.

Window and bucket state lives in campaign_schedule and channel_bucket, read and written under
row locks, so any number of schedulers share one budget per campaign and per channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.engine import Connection
from sqlalchemy.types import BigInteger, Double

DUE_TO_START = text(
    """
    SELECT id FROM campaign
     WHERE status = 'scheduled' AND starts_at <= now()
     ORDER BY starts_at, id
     LIMIT 1
     FOR UPDATE SKIP LOCKED
    """
)

ANY_DUE_TO_START = text(
    "SELECT EXISTS (SELECT 1 FROM campaign WHERE status = 'scheduled' AND starts_at <= now())"
)

CAMPAIGN_WINDOW = text(
    "SELECT window_start, window_end, ends_at FROM campaign WHERE id = :campaign_id"
)

RELEASABLE_COLUMNS = """
    k.id, k.channel, k.text, k.subject, k.ends_at, p.queued, k.correlation_id, k.rate_limit,
    k.window_start IS NOT NULL AS windowed, coalesce(s.tokens, 0) AS tokens,
    coalesce(s.refilled_at, now()) AS refilled_at, k.html, k.window_start, k.window_end
"""
# Only campaigns with a message due now: an index probe each, so a tick with nothing due
# takes no lock and writes nothing, however many messages wait.
RELEASABLE_FROM = """
      FROM campaign k
      JOIN campaign_progress p ON p.campaign_id = k.id
      LEFT JOIN campaign_schedule s ON s.campaign_id = k.id
     WHERE k.status = 'running' AND p.pending > 0 AND k.ends_at > now()
       AND EXISTS (
           SELECT 1 FROM message m
            WHERE m.campaign_id = k.id AND m.status = 'pending'
              AND coalesce(m.not_before, '-infinity'::timestamptz)
                  BETWEEN CASE WHEN k.window_start IS NOT NULL THEN 'epoch'::timestamptz
                               ELSE '-infinity'::timestamptz END
                      AND now())
"""

RELEASABLE = text(f"SELECT {RELEASABLE_COLUMNS} {RELEASABLE_FROM} ORDER BY k.id")

# One scheduler releases a campaign at a time: the others skip the rows it holds, and a
# pause or an edit waits for the release under way, then bites on the next tick.
LOCK_RELEASABLE = text(
    f"""
    SELECT {RELEASABLE_COLUMNS} {RELEASABLE_FROM} AND k.channel = :channel
     ORDER BY k.id
       FOR UPDATE OF k SKIP LOCKED
    """
)

SAVE_CAMPAIGN_BUCKETS = text(
    """
    INSERT INTO campaign_schedule (campaign_id, tokens, refilled_at)
    SELECT * FROM unnest(:ids, :tokens, :refilled) AS b(campaign_id, tokens, refilled_at)
    ON CONFLICT (campaign_id)
    DO UPDATE SET tokens = excluded.tokens, refilled_at = excluded.refilled_at
    """
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("tokens", type_=ARRAY(Double)),
    bindparam("refilled", type_=ARRAY(TIMESTAMP(timezone=True))),
)

ADD_CHANNEL = text(
    "INSERT INTO channel_bucket (channel) VALUES (:channel) ON CONFLICT DO NOTHING"
    " RETURNING channel"
)

# The channel's row lock makes releasing one channel one scheduler's job at a time.
LOCK_CHANNEL = text(
    """
    SELECT tokens, refilled_at, now() AS now FROM channel_bucket
     WHERE channel = :channel
       FOR UPDATE SKIP LOCKED
    """
)

SAVE_CHANNEL = text(
    "UPDATE channel_bucket SET tokens = :tokens, refilled_at = :refilled_at"
    " WHERE channel = :channel"
)

RELEASED_SINCE = text(
    """
    SELECT coalesce(sum(count), 0) FROM channel_release
     WHERE channel = :channel AND released_at > now() - make_interval(secs => :seconds)
       AND (CAST(:kind AS text) IS NULL OR kind = :kind)
    """
)

RECORD_RELEASE = text(
    "INSERT INTO channel_release (channel, count, kind) VALUES (:channel, :count, :kind)"
)

# Notifications take their tokens without the bucket's row lock (a campaign release may hold
# it for a while): the debit waits for that release to commit, the notifications do not.
DEBIT_CHANNEL = text("UPDATE channel_bucket SET tokens = tokens - :count WHERE channel = :channel")

PRUNE_RELEASES = text(
    """
    DELETE FROM channel_release
     WHERE channel = :channel AND released_at <= now() - make_interval(secs => :seconds)
    """
)

# Paused or cancelled campaigns with messages still out: senders hold what they get of them.
HELD = text(
    """
    SELECT k.id FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE k.status IN ('paused', 'cancelled') AND p.queued > 0
     ORDER BY k.id
    """
)

# Campaigns whose pending messages can no longer be sent: past their end, or cancelled.
CLOSABLE = text(
    """
    SELECT k.id, CASE WHEN k.status = 'cancelled' THEN 'cancelled' ELSE 'expired' END AS closes_to
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE p.pending > 0
       AND (k.status = 'cancelled'
            OR (k.status IN ('running', 'paused') AND k.ends_at <= now()))
    """
)


@dataclass(frozen=True, slots=True)
class Releasable:
    id: int
    channel: str
    text: str
    subject: str | None
    ends_at: dt.datetime
    queued: int
    correlation_id: str | None = None
    rate_limit: int | None = None
    windowed: bool = False
    tokens: float = 0.0
    refilled_at: dt.datetime | None = None
    html: str | None = None
    window_start: dt.time | None = None
    window_end: dt.time | None = None


@dataclass(frozen=True, slots=True)
class ChannelState:
    tokens: float
    refilled_at: dt.datetime
    now: dt.datetime


def any_due_to_start(conn: Connection) -> bool:
    """Whether a scheduled campaign's start has come (a peek: nothing is locked)."""
    return bool(conn.execute(ANY_DUE_TO_START).scalar_one())


def lock_next_due_to_start(conn: Connection) -> int | None:
    """Lock the next scheduled campaign whose start has come (other schedulers skip it)."""
    return conn.execute(DUE_TO_START).scalar_one_or_none()


def releasable(conn: Connection) -> list[Releasable]:
    """Running campaigns inside their time range that still have pending messages."""
    return [Releasable(**row) for row in conn.execute(RELEASABLE).mappings()]


def closable(conn: Connection) -> dict[str, list[int]]:
    """Campaign ids whose pending messages must close, keyed by the status they close to."""
    found: dict[str, list[int]] = {"expired": [], "cancelled": []}
    for row in conn.execute(CLOSABLE):
        found[row.closes_to].append(row.id)
    return found


def campaign_window(
    conn: Connection, campaign_id: int
) -> tuple[dt.time | None, dt.time | None, dt.datetime]:
    """The campaign's send window (start, end) and its ends_at."""
    row = conn.execute(CAMPAIGN_WINDOW, {"campaign_id": campaign_id}).one()
    return row.window_start, row.window_end, row.ends_at


def lock_releasable(conn: Connection, channel: str) -> list[Releasable]:
    """Lock the channel's releasable campaigns that no other scheduler holds."""
    rows = conn.execute(LOCK_RELEASABLE, {"channel": channel}).mappings()
    return [Releasable(**row) for row in rows]


def save_campaign_buckets(
    conn: Connection, buckets: Mapping[int, tuple[float, dt.datetime]]
) -> None:
    """Write back each campaign's token bucket (tokens, refilled_at)."""
    if not buckets:
        return
    conn.execute(
        SAVE_CAMPAIGN_BUCKETS,
        {
            "ids": list(buckets),
            "tokens": [tokens for tokens, _ in buckets.values()],
            "refilled": [at for _, at in buckets.values()],
        },
    )


def lock_channel(conn: Connection, channel: str) -> ChannelState | None:
    """Lock the channel's bucket; None while another scheduler is releasing the channel."""
    row = conn.execute(LOCK_CHANNEL, {"channel": channel}).mappings().one_or_none()
    if row is None and conn.execute(ADD_CHANNEL, {"channel": channel}).first():
        row = conn.execute(LOCK_CHANNEL, {"channel": channel}).mappings().one_or_none()
    return ChannelState(**row) if row else None


def save_channel(conn: Connection, channel: str, tokens: float, refilled_at: dt.datetime) -> None:
    conn.execute(SAVE_CHANNEL, {"channel": channel, "tokens": tokens, "refilled_at": refilled_at})


def released_since(conn: Connection, channel: str, seconds: float, kind: str | None = None) -> int:
    """Messages of the channel released in the last `seconds` (of one kind, if given)."""
    params = {"channel": channel, "seconds": seconds, "kind": kind}
    return int(conn.execute(RELEASED_SINCE, params).scalar_one())


def record_release(conn: Connection, channel: str, count: int, kind: str = "campaign") -> None:
    conn.execute(RECORD_RELEASE, {"channel": channel, "count": count, "kind": kind})


def debit_channel(conn: Connection, channel: str, count: int) -> None:
    """Take `count` tokens from the channel's bucket (it may go below zero)."""
    conn.execute(DEBIT_CHANNEL, {"channel": channel, "count": count})


def prune_releases(conn: Connection, channel: str, older_than_s: float) -> None:
    """Forget the channel's releases that no rolling window counts any more."""
    conn.execute(PRUNE_RELEASES, {"channel": channel, "seconds": older_than_s})


def held_campaigns(conn: Connection) -> list[int]:
    """Paused or cancelled campaigns that still have messages queued."""
    return list(conn.execute(HELD).scalars())
