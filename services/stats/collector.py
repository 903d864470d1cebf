"""Prometheus collector: per-campaign gauges, campaign and notification counts, read when scraped.

Per-campaign series exist only for running and paused campaigns (at most MAX_CAMPAIGN_SERIES,
newest first), so they come and go with the campaigns and stay bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shared.db.queries.notifications import notification_counts
from shared.domain import channels
from shared.domain.delivery import delivery_figures
from shared.domain.statuses import CampaignStatus, MessageStatus, NotificationStatus

log = logging.getLogger(__name__)

MAX_CAMPAIGN_SERIES = 50
PROGRESS_STATES = tuple(str(s) for s in MessageStatus)

CAMPAIGNS_BY_STATUS = text("SELECT status, count(*) AS n FROM campaign GROUP BY status")

ACTIVE_TOTALS = text(
    "SELECT "
    + ", ".join(f"coalesce(sum(p.{s}), 0) AS {s}" for s in MessageStatus)
    + """
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE k.status IN ('running', 'paused')
    """
)

# The last send, or the start while nothing was sent yet: what a stall alert compares to now.
ACTIVE_CAMPAIGNS = text(
    "SELECT k.id, k.status, p.total, "
    + ", ".join(f"p.{s}" for s in MessageStatus)
    + """,
           extract(epoch FROM coalesce(p.last_sent_at, k.started_at, k.created_at))
               AS last_progress_s
      FROM campaign k JOIN campaign_progress p ON p.campaign_id = k.id
     WHERE k.status IN ('running', 'paused')
     ORDER BY k.id DESC
     LIMIT :limit
    """
)


@dataclass(frozen=True, slots=True)
class ActiveCampaign:
    id: int
    status: str
    total: int
    pending: int
    queued: int
    sent: int
    failed: int
    expired: int
    cancelled: int
    delivered: int
    undelivered: int
    last_progress_s: float

    def count(self, state: str) -> int:
        return int(getattr(self, state))

    @property
    def delivery_rate(self) -> float | None:
        """Delivered / sent while running, once a receipt came: a gateway without receipts,
        or a paused campaign, never looks like one whose messages do not arrive."""
        if self.status != CampaignStatus.RUNNING or not (self.delivered + self.undelivered):
            return None
        return delivery_figures({s: self.count(s) for s in PROGRESS_STATES})["delivery_rate"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    by_status: dict[str, int]
    active_totals: dict[str, int]
    campaigns: Sequence[ActiveCampaign]
    notifications: dict[str, dict[str, int]]  # channel -> status -> count, zeros included


def read_snapshot(engine: Engine, limit: int = MAX_CAMPAIGN_SERIES) -> Snapshot:
    """Campaign counts by status, message totals of active campaigns, the newest active ones."""
    with engine.connect() as conn:
        by_status = {str(s): 0 for s in CampaignStatus}
        by_status.update({row.status: row.n for row in conn.execute(CAMPAIGNS_BY_STATUS)})
        totals = conn.execute(ACTIVE_TOTALS).mappings().one()
        campaigns = [
            ActiveCampaign(**{**row, "last_progress_s": float(row["last_progress_s"] or 0)})
            for row in conn.execute(ACTIVE_CAMPAIGNS, {"limit": limit}).mappings()
        ]
        counted = notification_counts(conn)
    active_totals = {str(s): int(totals[str(s)]) for s in MessageStatus}
    notifications = {
        channel: {str(s): counted.get(channel, {}).get(str(s), 0) for s in NotificationStatus}
        for channel in sorted(set(channels.names()) | set(counted))
    }
    return Snapshot(by_status, active_totals, campaigns, notifications)


class CampaignCollector(Collector):
    """Gauges for a scrape: campaigns by status, active totals, per-campaign progress."""

    def __init__(
        self, engine: Engine, limit: int = MAX_CAMPAIGN_SERIES, alert_share: float = 0.8
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.alert_share = alert_share

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering calls describe(), not collect(): no query before the first scrape.
        yield from families(alert_share=self.alert_share)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            snapshot = read_snapshot(self.engine, self.limit)
        except SQLAlchemyError as exc:
            log.warning("campaign metrics unavailable: %s", exc)
            return
        yield from families(snapshot, self.alert_share)


def families(
    snapshot: Snapshot | None = None, alert_share: float = 0.8
) -> tuple[GaugeMetricFamily, ...]:
    campaigns = GaugeMetricFamily(
        "herald_stats_campaigns", "Campaigns by status.", labels=["status"]
    )
    active = GaugeMetricFamily(
        "herald_stats_active_messages",
        "Messages of running and paused campaigns, by message status.",
        labels=["status"],
    )
    progress = GaugeMetricFamily(
        "herald_stats_campaign_messages",
        "Messages of one running or paused campaign, by status.",
        labels=["campaign_id", "status"],
    )
    recipients = GaugeMetricFamily(
        "herald_stats_campaign_recipients",
        "Recipients of one running or paused campaign.",
        labels=["campaign_id"],
    )
    paused = GaugeMetricFamily(
        "herald_stats_campaign_paused",
        "1 while a running-or-paused campaign is paused, 0 while it runs.",
        labels=["campaign_id"],
    )
    last = GaugeMetricFamily(
        "herald_stats_campaign_last_progress_timestamp_seconds",
        "When a running or paused campaign last sent a message (its start if none yet).",
        labels=["campaign_id"],
    )
    notifications = GaugeMetricFamily(
        "herald_stats_notifications",
        "Notifications by channel and status (apart from campaign messages).",
        labels=["channel", "status"],
    )
    delivery = GaugeMetricFamily(
        "herald_stats_campaign_delivery_rate",
        "Delivered / sent of one running campaign, once it has a receipt (0 to 1).",
        labels=["campaign_id"],
    )
    # The configured share, so the alert rule compares against configuration.
    share = GaugeMetricFamily(
        "herald_stats_delivery_rate_alert_share",
        "Delivery rate under which a running campaign alerts (HERALD_DELIVERY_RATE_ALERT_SHARE).",
        value=alert_share,
    )
    if snapshot is not None:
        for channel, counts in snapshot.notifications.items():
            for status, n in counts.items():
                notifications.add_metric([channel, status], n)
        for status, n in snapshot.by_status.items():
            campaigns.add_metric([status], n)
        for status, n in snapshot.active_totals.items():
            active.add_metric([status], n)
        for c in snapshot.campaigns:
            cid = str(c.id)
            for state in PROGRESS_STATES:
                progress.add_metric([cid, state], c.count(state))
            recipients.add_metric([cid], c.total)
            paused.add_metric([cid], 1 if c.status == CampaignStatus.PAUSED else 0)
            last.add_metric([cid], c.last_progress_s)
            rate = c.delivery_rate
            if rate is not None:
                delivery.add_metric([cid], rate)
    return campaigns, active, progress, recipients, paused, last, notifications, delivery, share
