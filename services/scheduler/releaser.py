"""Each tick: claim due messages within the campaign's budget, publish them as batches, mark queued.

Claim, publish and commit happen in one transaction: if a publish fails the claim rolls
back and the messages stay pending; a crash after the publish re-releases them, and the
message id (the idempotency key) absorbs that duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import astuple

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from services.scheduler import metrics
from shared.config import ChannelLimits, Settings
from shared.db.queries.messages import DueMessage, count_due
from shared.db.queries.scheduling import (
    Releasable,
    lock_channel,
    lock_releasable,
    prune_releases,
    record_release,
    releasable,
    released_since,
    save_campaign_buckets,
    save_channel,
)
from shared.db.queries.statuses import claim_due
from shared.domain.channels import rules_for
from shared.domain.templates import render, render_html
from shared.domain.throttle import (
    Bucket,
    available,
    batch_size,
    fair_split,
    queue_cap,
    refill,
    take,
    window_room,
)
from shared.domain.windows import next_closing
from shared.messaging.envelopes import DeliveryBatch, DeliveryItem
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import DELIVERIES_EXCHANGE

log = logging.getLogger(__name__)

NO_LIMITS = ChannelLimits()


def template_values(message: DueMessage) -> dict[str, object]:
    """The variables a template may use: the client's attributes, then its fields."""
    return {
        **message.attributes,
        "phone": message.phone,
        "email": message.email,
        "operator_code": message.operator_code,
        "timezone": message.timezone,
    }


class ValidUntil:
    """When a campaign's message stops being worth delivering: the earlier of the campaign's
    end and the close of the send window in the recipient's zone. One reckoning per zone."""

    def __init__(self, campaign: Releasable, now: dt.datetime) -> None:
        self._campaign = campaign
        self._now = now
        self._by_zone: dict[str, float] = {}

    def __call__(self, timezone: str) -> float:
        found = self._by_zone.get(timezone)
        if found is None:
            campaign = self._campaign
            until = campaign.ends_at
            if campaign.window_start is not None and campaign.window_end is not None:
                closes = next_closing(
                    self._now, timezone, campaign.window_start, campaign.window_end
                )
                until = min(until, closes) if closes is not None else until
            found = self._by_zone[timezone] = until.timestamp()
        return found


def to_item(
    campaign: Releasable, message: DueMessage, valid_until: ValidUntil | None = None
) -> DeliveryItem:
    values = template_values(message)
    address = getattr(message, rules_for(campaign.channel).address_field)
    return DeliveryItem(
        message_id=message.id,
        address=address or "",
        text=render(campaign.text, values),
        attempt=1,
        deadline=campaign.ends_at.timestamp(),
        subject=render(campaign.subject, values) if campaign.subject else None,
        html=render_html(campaign.html, values) if campaign.html else None,
        client_id=message.client_id,
        operator_code=message.operator_code,
        valid_until=valid_until(message.timezone) if valid_until is not None else None,
    )


def chunks(items: Sequence[DeliveryItem], size: int) -> Iterator[tuple[DeliveryItem, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def publish_campaign(
    conn: Connection,
    publisher: ConfirmingPublisher,
    campaign: Releasable,
    count: int,
    settings: Settings,
) -> int:
    """Claim up to `count` due messages of the campaign and publish them; returns how many."""
    due = claim_due(conn, campaign.id, count, windowed=campaign.windowed)
    valid_until = ValidUntil(campaign, dt.datetime.now(dt.UTC))
    items = [to_item(campaign, message, valid_until) for message in due]
    headers: dict[str, object] = {"x-campaign-id": campaign.id}
    if campaign.correlation_id:
        headers["x-correlation-id"] = campaign.correlation_id
    size = batch_size(campaign.rate_limit, settings.tick_interval_s, settings.batch_size)
    for batch in chunks(items, size):
        body = DeliveryBatch(campaign.id, campaign.channel, batch).encode()
        publisher.publish(DELIVERIES_EXCHANGE, campaign.channel, body, headers=headers)
        metrics.BATCHES.labels(campaign.channel).inc()
    return len(items)


def release_channel(
    engine: Engine,
    publisher: ConfirmingPublisher,
    settings: Settings,
    channel: str,
    limits: ChannelLimits,
    turn: int = 0,
) -> int:
    """Release one tick's budget of a channel, shared fairly by its campaigns; returns how many.

    One transaction holds the channel's bucket and its campaigns' rows, so whichever
    scheduler gets them spends the shared budget and writes it back.
    """
    with engine.begin() as conn:
        state = lock_channel(conn, channel)
        if state is None:
            return 0
        campaigns = lock_releasable(conn, channel)
        buckets = {
            c.id: refill(campaign_bucket(c, state.now), state.now, c.rate_limit)
            for c in campaigns
            if c.rate_limit
        }
        allowed = {c.id: allowance(c, buckets.get(c.id), settings) for c in campaigns}
        bucket = None
        if limits.per_second:
            bucket = refill(Bucket(state.tokens, state.refilled_at), state.now, limits.per_second)
        budget = channel_budget(conn, channel, limits, bucket)
        shares = share_out(conn, campaigns, allowed, budget, turn)
        released = {
            c.id: publish_campaign(conn, publisher, c, shares[c.id], settings)
            for c in campaigns
            if shares[c.id] > 0
        }
        total = sum(released.values())
        save_campaign_buckets(
            conn, {cid: astuple(take(b, released.get(cid, 0))) for cid, b in buckets.items()}
        )
        if bucket is not None:
            save_channel(conn, channel, *astuple(take(bucket, total)))
        if limits.windows and total:
            record_release(conn, channel, total)
    metrics.RELEASED.labels(channel).inc(total)
    return total


def campaign_bucket(campaign: Releasable, now: dt.datetime) -> Bucket:
    return Bucket(campaign.tokens, campaign.refilled_at or now)


def allowance(campaign: Releasable, bucket: Bucket | None, settings: Settings) -> int:
    """The most this campaign may release this tick: its rate, its queue room, the tick cap."""
    room = queue_cap(campaign.rate_limit, settings.max_queued_per_campaign) - campaign.queued
    tokens = available(bucket) if bucket is not None else settings.release_per_tick
    return max(0, min(settings.release_per_tick, room, tokens))


def channel_budget(
    conn: Connection, channel: str, limits: ChannelLimits, bucket: Bucket | None
) -> int | None:
    """What the channel's ceilings allow this tick; None when it has none."""
    budgets = [available(bucket)] if bucket is not None else []
    for count, seconds in limits.windows:
        budgets.append(window_room(count, released_since(conn, channel, seconds)))
    return min(budgets, default=None)


def share_out(
    conn: Connection,
    campaigns: Sequence[Releasable],
    allowed: Mapping[int, int],
    budget: int | None,
    turn: int,
) -> dict[int, int]:
    """Each campaign's part of the channel budget; a campaign with little due leaves the rest."""
    if budget is None or budget >= sum(allowed.values()):
        return dict(allowed)
    if len(campaigns) == 1:
        return {campaigns[0].id: min(budget, allowed[campaigns[0].id])}
    wants = {
        c.id: count_due(conn, c.id, allowed[c.id], windowed=c.windowed) if allowed[c.id] else 0
        for c in campaigns
    }
    return fair_split(budget, wants, turn)


def release_due(
    engine: Engine,
    publisher: ConfirmingPublisher,
    settings: Settings,
    limits: Mapping[str, ChannelLimits] | None = None,
    turn: int = 0,
) -> int:
    """Release every running campaign's due messages for this tick; returns how many."""
    with engine.connect() as conn:
        channels = sorted({c.channel for c in releasable(conn)})
    limits = limits or {}
    return sum(
        release_channel(engine, publisher, settings, ch, limits.get(ch, NO_LIMITS), turn)
        for ch in channels
    )


def prune_channel_releases(engine: Engine, limits: Mapping[str, ChannelLimits]) -> None:
    """Forget releases older than every rolling window of their channel."""
    with engine.begin() as conn:
        for channel, found in limits.items():
            # Notifications check the last second of their own releases against per_second.
            if found.windows or found.per_second:
                prune_releases(conn, channel, max(found.longest_window_s, 1.0))
