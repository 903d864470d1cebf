"""SQLAlchemy 2.0 typed declarative tables: clients, campaigns, messages, notifications, outbox.

The schema is owned by the alembic migrations; these classes mirror it for typed queries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    func,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = TIMESTAMP(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Client(Base):
    __tablename__ = "client"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    operator_code: Mapped[str] = mapped_column(String(8))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=sql("'{}'"))
    timezone: Mapped[str] = mapped_column(String(64), server_default=sql("'UTC'"))
    email: Mapped[str | None] = mapped_column(String(320))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql("'{}'"))
    # Channels this client opted out of (e.g. {"email"}): never materialised for them.
    opted_out: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=sql("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (
        Index("ix_client_tags", "tags", postgresql_using="gin"),
        Index("ix_client_attributes", "attributes", postgresql_using="gin"),
        Index("ix_client_operator_code", "operator_code"),
    )


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    filter_tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=sql("'{}'"))
    filter_operator_codes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=sql("'{}'")
    )
    starts_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ends_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    window_start: Mapped[dt.time | None] = mapped_column(Time)
    window_end: Mapped[dt.time | None] = mapped_column(Time)
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    # The stored template its texts were copied from when it was created, if any.
    template: Mapped[str | None] = mapped_column(
        String(100), ForeignKey("template.name", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), server_default=sql("'scheduled'"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # The ids its messages were given at materialisation: the partitions that hold them.
    first_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Rows dropped by retention; their figures live on in the *_archive tables.
    messages_dropped: Mapped[int] = mapped_column(BigInteger, server_default=sql("0"))

    __table_args__ = (Index("ix_campaign_status", "status"),)


class CampaignGatewayArchive(Base):
    """What each gateway took of a campaign, summed from message rows retention dropped."""

    __tablename__ = "campaign_gateway_archive"

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)  # '': not recorded
    sent: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    undelivered: Mapped[int] = mapped_column(BigInteger)
    segments: Mapped[int] = mapped_column(BigInteger)


class CampaignSentArchive(Base):
    """Sends per second of a campaign, summed from message rows retention dropped."""

    __tablename__ = "campaign_sent_archive"

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    # Epoch seconds: any timeline width (whole seconds) sums them exactly.
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sent: Mapped[int] = mapped_column(BigInteger)


class CampaignProgress(Base):
    """Per-campaign counters, kept equal to count(*) of messages by status by a trigger."""

    __tablename__ = "campaign_progress"

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    pending: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    queued: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    sent: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    failed: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    expired: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    cancelled: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    delivered: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    undelivered: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    # Clients the filter matched but who got no message: no address for the channel, or
    # opted out of it. Counted once, when the campaign starts.
    left_out_no_address: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    left_out_opted_out: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    first_sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Message(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign.id", ondelete="CASCADE")
    )
    client_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("client.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), server_default=sql("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    queued_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # When a receipt said it reached the handset or the inbox, or failed to.
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # Written with the sent outcome: the SMS parts it was billed as, the gateway that took it.
    segments: Mapped[int | None] = mapped_column(SmallInteger)
    gateway: Mapped[str | None] = mapped_column(String(64))

    # Partitioned by id range (migration 0010, shared/db/queries/partitions.py): a key or
    # unique index may only include id, so (campaign_id, client_id) is a plain index.
    __table_args__ = (
        Index("ix_message_campaign_id_client_id", "campaign_id", "client_id"),
        Index("ix_message_campaign_id_status", "campaign_id", "status"),
        # "Anything due?" is one probe; NULL not_before (never scheduled) sorts first.
        Index(
            "ix_message_due",
            "campaign_id",
            sql("coalesce(not_before, '-infinity'::timestamptz)"),
            "id",
            postgresql_where=sql("status = 'pending'"),
        ),
        Index("ix_message_client_id", "client_id"),
        Index("ix_message_campaign_id_sent_at", "campaign_id", "sent_at"),
        {"postgresql_partition_by": "RANGE (id)"},
    )


class Template(Base):
    """A stored text, named by campaigns and notifications; they copy it when created."""

    __tablename__ = "template"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class Notification(Base):
    """One message an application asked for, rendered and addressed when it was accepted.

    Its id comes from the message sequence: ids are unique across messages and notifications.
    """

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=sql("nextval('message_id_seq')")
    )
    channel: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("client.id", ondelete="SET NULL")
    )
    address: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(
        String(100), ForeignKey("template.name", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), server_default=sql("'queued'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    # Set when the scheduler handed it to the priority lane; it stays queued until its outcome.
    released_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    segments: Mapped[int | None] = mapped_column(SmallInteger)
    gateway: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "ix_notification_due",
            "channel",
            sql("coalesce(not_before, '-infinity'::timestamptz)"),
            "id",
            postgresql_where=sql("status = 'queued' AND released_at IS NULL"),
        ),
        Index(
            "uq_notification_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=sql("idempotency_key IS NOT NULL"),
        ),
        Index("ix_notification_status_id", "status", "id"),
        Index("ix_notification_client_id", "client_id"),
    )


class NotificationCount(Base):
    """Notifications by channel and status, kept equal to count(*) by a trigger.

    Each count is split over shards (one per backend, modulo), so concurrent accepts do not
    queue on one row; the count is the sum of its shards.
    """

    __tablename__ = "notification_count"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, server_default=sql("0"))


class Outbox(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(100))
    routing_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    published_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=sql("published_at IS NULL")),
    )


class ChannelRelease(Base):
    """Messages released per channel per tick: the rolling-window ceilings count these."""

    __tablename__ = "channel_release"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    released_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    count: Mapped[int] = mapped_column(Integer)
    # Which lane released them: "campaign" or "notification".
    kind: Mapped[str] = mapped_column(String(16), server_default=sql("'campaign'"))

    __table_args__ = (Index("ix_channel_release_channel_released_at", "channel", "released_at"),)


class CampaignSchedule(Base):
    """What the scheduler keeps per started campaign: the window its messages' not_before
    reflect, when to look at the window again, and the campaign's token bucket."""

    __tablename__ = "campaign_schedule"

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[dt.time | None] = mapped_column(Time)
    window_end: Mapped[dt.time | None] = mapped_column(Time)
    ends_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    window_check_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    tokens: Mapped[float] = mapped_column(Double, server_default=sql("0"))
    refilled_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class ChannelBucket(Base):
    """A channel's per-second token bucket; its row lock lets one scheduler release a channel."""

    __tablename__ = "channel_bucket"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double, server_default=sql("0"))
    refilled_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class SummaryReport(Base):
    """Days whose summary e-mail went out, so a restart does not send it twice."""

    __tablename__ = "summary_report"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class EarlyReceipt(Base):
    """A receipt for a message whose sent outcome is not recorded yet; applied with it."""

    __tablename__ = "early_receipt"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(Timestamp)
    opt_out: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    received_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (Index("ix_early_receipt_received_at", "received_at"),)


class SenderHealth(Base):
    """The newest breaker states a sender reported (stats writes, the API reads)."""

    __tablename__ = "sender_health"

    instance: Mapped[str] = mapped_column(String(200), primary_key=True)
    circuits: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=sql("'{}'"))
    gateways: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=sql("'{}'"))
    seen_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class Webhook(Base):
    """A subscription: events of the listed types are POSTed, signed with its secret."""

    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=sql("true"))
    failing_since: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class WebhookEvent(Base):
    """One POST owed to a subscription: a JSON array of events, written by the triggers."""

    __tablename__ = "webhook_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook.id", ondelete="CASCADE")
    )
    payload: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    events: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    next_attempt_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    given_up_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index(
            "ix_webhook_event_owed",
            "webhook_id",
            "next_attempt_at",
            "id",
            postgresql_where=sql("delivered_at IS NULL AND given_up_at IS NULL"),
        ),
    )


class WebhookAttempt(Base):
    """One POST of an event row: its answer or its error, and how long it took."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    attempted_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    events: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_webhook_attempt_webhook_id_id", "webhook_id", "id"),)
