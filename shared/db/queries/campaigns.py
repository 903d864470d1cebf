"""Campaign statements: insert with its progress row, update, delete, keyset listing, progress.

Statements that change a status live in `shared/db/queries/statuses.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update

from shared.db.models import Campaign, CampaignProgress, Message
from shared.domain.statuses import MessageStatus

# campaign_progress has a counter per message status, plus the total.
PROGRESS_COUNTS = ("total", *(str(status) for status in MessageStatus))


def insert_campaign(conn: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Insert a campaign and its zeroed progress row; return the campaign."""
    row = (
        conn.execute(insert(Campaign).values(**values).returning(*Campaign.__table__.c))
        .mappings()
        .one()
    )
    conn.execute(insert(CampaignProgress).values(campaign_id=row["id"]))
    return row


def get_campaign(
    conn: Connection, campaign_id: int, *, for_update: bool = False
) -> RowMapping | None:
    """One campaign; with for_update, locked until the transaction ends."""
    stmt = select(Campaign.__table__).where(Campaign.id == campaign_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def update_campaign(conn: Connection, campaign_id: int, values: Mapping[str, Any]) -> RowMapping:
    """Set the given columns and return the campaign."""
    stmt = (
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(**values, updated_at=func.now())
        .returning(*Campaign.__table__.c)
    )
    return conn.execute(stmt).mappings().one()


def delete_campaign(conn: Connection, campaign_id: int) -> None:
    """Delete a campaign; its progress row and messages go with it (ON DELETE CASCADE)."""
    conn.execute(delete(Campaign).where(Campaign.id == campaign_id))


def list_campaigns(
    conn: Connection,
    *,
    limit: int,
    after: int | None = None,
    status: str | None = None,
    channel: str | None = None,
    newest_first: bool = False,
) -> list[RowMapping]:
    """One keyset page ordered by id (descending when newest_first), each with its counters.

    `after` is the last id of the previous page in that order. The counters come from
    campaign_progress by primary key, so a page costs the same with 10 or 10,000 campaigns.
    """
    progress = CampaignProgress.__table__.c
    counters = [
        func.coalesce(progress[name], 0).label(f"progress_{name}") for name in PROGRESS_COUNTS
    ]
    order = Campaign.id.desc() if newest_first else Campaign.id
    stmt = (
        select(*Campaign.__table__.c, *counters)
        .select_from(Campaign)
        .outerjoin(CampaignProgress, CampaignProgress.campaign_id == Campaign.id)
        .order_by(order)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Campaign.id < after if newest_first else Campaign.id > after)
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if channel is not None:
        stmt = stmt.where(Campaign.channel == channel)
    return list(conn.execute(stmt).mappings())


def _progress_select() -> Any:
    progress = CampaignProgress.__table__.c
    counts = [func.coalesce(progress[name], 0).label(name) for name in PROGRESS_COUNTS]
    return (
        select(
            Campaign.id.label("campaign_id"),
            Campaign.status,
            *counts,
            func.coalesce(CampaignProgress.left_out_no_address, 0).label("left_out_no_address"),
            func.coalesce(CampaignProgress.left_out_opted_out, 0).label("left_out_opted_out"),
            CampaignProgress.first_sent_at,
            CampaignProgress.last_sent_at,
        )
        .select_from(Campaign)
        .outerjoin(CampaignProgress, CampaignProgress.campaign_id == Campaign.id)
        .order_by(Campaign.id)
    )


def campaign_progress(conn: Connection, campaign_id: int) -> RowMapping | None:
    """Status and counters of one campaign; None when it does not exist."""
    stmt = _progress_select().where(Campaign.id == campaign_id)
    return conn.execute(stmt).mappings().first()


def all_progress(conn: Connection) -> list[RowMapping]:
    """Status and counters of every campaign, by id."""
    return list(conn.execute(_progress_select()).mappings())


def list_messages(
    conn: Connection,
    campaign_id: int,
    *,
    limit: int,
    after: int | None = None,
    status: str | None = None,
) -> list[RowMapping]:
    """One keyset page of a campaign's messages ordered by id."""
    stmt = (
        select(
            Message.id,
            Message.client_id,
            Message.status,
            Message.attempts,
            Message.last_error,
            Message.not_before,
            Message.queued_at,
            Message.sent_at,
            Message.updated_at,
        )
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Message.id > after)
    if status is not None:
        stmt = stmt.where(Message.status == status)
    return list(conn.execute(stmt).mappings())
