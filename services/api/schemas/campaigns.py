"""CampaignSchema (PUT/POST, partial for PATCH), stats and message schemas.

Loading maps the API shape onto column names (filter_tags, window_start, ...); dumping maps
a row back, so core and queries only ever see columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    validate,
    validates_schema,
)

from services.api.schemas.channels import KnownChannel
from services.api.schemas.common import PageArgsSchema, PageSchema, StrictSchema, Text
from services.api.schemas.contents import ContentSchema
from shared.domain.campaigns import (
    channel_reasons,
    parse_clock,
    time_range_reasons,
)
from shared.domain.statuses import CampaignStatus, MessageStatus
from shared.domain.templates import TEMPLATE_NAME

CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TEMPLATE_NAME_PATTERN = f"^{TEMPLATE_NAME.pattern}$"


class FilterSchema(StrictSchema):
    tags = fields.List(Text(validate=validate.Length(min=1, max=64)), load_default=list)
    operator_codes = fields.List(
        Text(validate=validate.Regexp(r"^[0-9]{1,8}$", error="must be 1 to 8 digits")),
        load_default=list,
    )


class WindowSchema(StrictSchema):
    start = Text(
        required=True,
        validate=validate.Regexp(CLOCK_PATTERN, error="must be HH:MM"),
        metadata={"example": "09:00"},
    )
    end = Text(
        required=True,
        validate=validate.Regexp(CLOCK_PATTERN, error="must be HH:MM"),
        metadata={"example": "21:00"},
    )

    @validates_schema
    def differ(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") is not None and data.get("start") == data.get("end"):
            raise ValidationError("start and end must differ", "end")


def text_or_template_reasons(data: dict[str, Any], *, is_partial: bool) -> dict[str, list[str]]:
    """Exactly one of text and template (at most one in a partial change)."""
    if data.get("template") is not None and data.get("text") is not None:
        return {"template": ["give text or template, not both"]}
    if not is_partial and data.get("template") is None and data.get("text") is None:
        return {"text": ["give text or template"]}
    return {}


class CampaignSchema(ContentSchema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    channel = Text(required=True, validate=KnownChannel())
    template = Text(
        validate=validate.Regexp(TEMPLATE_NAME_PATTERN, error="not a template name"),
        allow_none=True,
        metadata={
            "description": "A stored template's name, instead of text: its text, subject and "
            "html are copied into the campaign (a subject given here wins)."
        },
    )
    filter = fields.Nested(
        FilterSchema,
        metadata={
            "description": "Any of the tags AND any of the codes; an empty list matches all."
        },
    )
    starts_at = fields.AwareDateTime(metadata={"description": "Defaults to now."})
    ends_at = fields.AwareDateTime(required=True)
    send_window = fields.Nested(
        WindowSchema,
        allow_none=True,
        metadata={"description": "Recipient-local hours; may wrap midnight."},
    )
    rate_limit = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "Messages per second."},
    )
    status = fields.String(dump_only=True, validate=validate.OneOf(list(CampaignStatus)))
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)
    started_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    finished_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    messages_dropped = fields.Integer(
        dump_only=True,
        metadata={
            "description": "Message rows dropped by retention (HERALD_MESSAGE_RETENTION_DAYS); "
            "the counters and stats still include them."
        },
    )

    @validates_schema
    def cross_field(self, data: dict[str, Any], **_: Any) -> None:
        reasons = time_range_reasons(data.get("starts_at"), data.get("ends_at"))
        reasons.update(text_or_template_reasons(data, is_partial=bool(self.partial)))
        # A template's subject and html are checked once copied.
        if not self.partial and data.get("template") is None:
            reasons.update(
                channel_reasons(data.get("channel"), data.get("subject"), data.get("html"))
            )
        if reasons:
            raise ValidationError(reasons)

    @post_load
    def to_columns(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Flatten filter and send_window onto their columns."""
        if "filter" in data:
            given = data.pop("filter")
            for key, column in (
                ("tags", "filter_tags"),
                ("operator_codes", "filter_operator_codes"),
            ):
                if key in given:
                    data[column] = list(dict.fromkeys(given[key]))
        if "send_window" in data:
            window = data.pop("send_window")
            data["window_start"] = parse_clock(window["start"]) if window else None
            data["window_end"] = parse_clock(window["end"]) if window else None
        return data

    @pre_dump
    def from_columns(self, row: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        """Nest the filter and window columns back into their API shape."""
        data = dict(row)
        data["filter"] = {
            "tags": data.pop("filter_tags", []),
            "operator_codes": data.pop("filter_operator_codes", []),
        }
        start, end = data.pop("window_start", None), data.pop("window_end", None)
        data["send_window"] = (
            {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
            if start is not None and end is not None
            else None
        )
        return data


class CampaignPatchSchema(CampaignSchema):
    """Any subset of the campaign's fields; the merged campaign is checked as a whole."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


class CampaignQueryArgsSchema(PageArgsSchema):
    status = Text(validate=validate.OneOf(list(CampaignStatus)))
    channel = Text(validate=KnownChannel())
    order = Text(
        load_default="id",
        validate=validate.OneOf(["id", "-id"]),
        metadata={
            "description": "id: oldest first; -id: newest first (then ?after= is the last id "
            "seen and the next page holds smaller ids)."
        },
    )


class ListedCampaignSchema(CampaignSchema):
    progress = fields.Nested(
        "CountsProgressSchema",
        dump_only=True,
        metadata={"description": "Counters by status, done and percent_done."},
    )


class CampaignPageSchema(PageSchema):
    items = fields.List(fields.Nested(ListedCampaignSchema))


class StatsLeftOutSchema(Schema):
    no_address = fields.Integer(
        metadata={"description": "Matched the filter but have no address for the channel."}
    )
    opted_out = fields.Integer(metadata={"description": "Matched but opted out of the channel."})


SENT_DESCRIPTION = (
    "Taken by the gateway: still awaiting a receipt, delivered or undelivered, so it equals "
    "the recipients sent to whether receipts come back or not."
)


class DeliverySchema(Schema):
    """The counts receipts tell apart, and the rate derived from them."""

    sent = fields.Integer(metadata={"description": SENT_DESCRIPTION})
    delivered = fields.Integer(metadata={"description": "Receipt said: on the handset."})
    undelivered = fields.Integer(
        metadata={"description": "Receipt said: not delivered (expired, rejected, ...)."}
    )
    awaiting_receipt = fields.Integer(
        metadata={"description": "Sent, with no receipt yet: sent - delivered - undelivered."}
    )
    delivery_rate = fields.Float(
        allow_none=True,
        metadata={"description": "delivered / sent, 0 to 1; null while sent is 0."},
    )


class CountsSchema(DeliverySchema):
    total = fields.Integer()
    pending = fields.Integer()
    queued = fields.Integer()
    failed = fields.Integer()
    expired = fields.Integer()
    cancelled = fields.Integer()


class CountsProgressSchema(CountsSchema):
    done = fields.Integer(metadata={"description": "Messages in a final status."})
    percent_done = fields.Float(metadata={"description": "done / total * 100."})


class TimelineArgsSchema(StrictSchema):
    bucket_s = fields.Integer(
        validate=validate.Range(min=1, max=86400),
        metadata={"description": "Bucket width in seconds; chosen for the campaign if left out."},
    )
    since = fields.AwareDateTime(
        metadata={"description": "Only the bucket holding this time and the later ones."}
    )


class TimelinePointSchema(Schema):
    at = fields.AwareDateTime(metadata={"description": "The bucket's start (UTC)."})
    sent = fields.Integer(metadata={"description": "Messages the gateway took in the bucket."})


class TimelineSchema(Schema):
    bucket_s = fields.Integer()
    points = fields.List(
        fields.Nested(TimelinePointSchema),
        metadata={"description": "Oldest first; buckets without a send are left out."},
    )


class GatewayStatsSchema(Schema):
    sent = fields.Integer(metadata={"description": "Taken by this gateway: " + SENT_DESCRIPTION})
    delivered = fields.Integer()
    undelivered = fields.Integer()
    segments = fields.Integer(metadata={"description": "Segments of those messages."})


class CampaignStatsSchema(CountsSchema):
    campaign_id = fields.Integer()
    status = fields.String()
    done = fields.Integer(metadata={"description": "Messages in a final status."})
    percent_done = fields.Float(metadata={"description": "done / total * 100."})
    rate_per_s = fields.Float(
        metadata={"description": "Messages sent over the last 10 seconds, per second."}
    )
    eta_s = fields.Float(
        allow_none=True,
        metadata={
            "description": "Seconds left at the current rate: (pending + queued) / rate_per_s; "
            "0 when nothing is left, null while the rate is 0."
        },
    )
    left_out = fields.Nested(
        StatsLeftOutSchema,
        metadata={"description": "Recipients left out when the campaign started, by reason."},
    )
    segments_sent = fields.Integer(
        metadata={"description": "SMS segments of the messages sent, delivered or undelivered."}
    )
    by_gateway = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(GatewayStatsSchema),
        metadata={
            "description": "Per gateway that took messages of this campaign (single campaign "
            "stats only)."
        },
    )


class RequeuedSchema(Schema):
    requeued = fields.Integer(metadata={"description": "Failed messages put back to pending."})


class LeftOutSchema(Schema):
    total = fields.Integer()
    no_phone = fields.Integer(metadata={"description": "No phone, for an http campaign."})
    no_email = fields.Integer(metadata={"description": "No e-mail, for an email campaign."})
    opted_out = fields.Integer(metadata={"description": "Opted out of this channel."})


class ForecastSchema(Schema):
    rate_per_s = fields.Float(metadata={"description": "The sending rate assumed."})
    rate_basis = fields.String(
        validate=validate.OneOf(["rate_limit", "channel_limit", "default_throughput"]),
        metadata={"description": "Where that rate comes from."},
    )
    starts_at = fields.AwareDateTime(metadata={"description": "starts_at, or now if later."})
    finishes_at = fields.AwareDateTime(
        metadata={"description": "Estimated end of the last send, rounded up to the minute."}
    )
    duration_s = fields.Integer()
    fits_before_end = fields.Boolean(metadata={"description": "finishes_at <= ends_at."})


class SmsMessagesSchema(Schema):
    gsm7 = fields.Integer(
        attribute="GSM-7", data_key="GSM-7", metadata={"description": "Texts in GSM 03.38."}
    )
    ucs2 = fields.Integer(
        attribute="UCS-2",
        data_key="UCS-2",
        metadata={"description": "Texts with a character outside GSM-7."},
    )


MONEY = {"description": "Decimal string: price per segment x segments; null without a price."}


class SmsRouteSchema(Schema):
    route = fields.String(metadata={"description": '"default", "operator 901", "prefix 7912".'})
    messages = fields.Integer()
    segments = fields.Integer()
    cost = fields.String(allow_none=True, metadata=MONEY)


class SmsForecastSchema(Schema):
    messages = fields.Nested(SmsMessagesSchema, metadata={"description": "Recipients by encoding."})
    segments = fields.Integer(metadata={"description": "Segments over the whole audience."})
    max_segments = fields.Integer(
        metadata={"description": "The most segments one text may take (HERALD_SMS_MAX_SEGMENTS)."}
    )
    forced_ucs2_by = fields.String(
        allow_none=True,
        metadata={"description": "The character that forces UCS-2 for most of those it does."},
    )
    routes = fields.List(fields.Nested(SmsRouteSchema))
    cost = fields.String(
        allow_none=True,
        metadata={"description": "Sum over routes; null if a route with recipients has no price."},
    )


class SampleSchema(Schema):
    client_id = fields.Integer()
    address = fields.String(metadata={"description": "Where this client's message would go."})
    text = fields.String(metadata={"description": "The text rendered with this client's fields."})
    subject = fields.String(allow_none=True)
    html = fields.String(allow_none=True, metadata={"description": "Values HTML-escaped."})


class PreviewSchema(Schema):
    matched = fields.Integer(metadata={"description": "Clients the filter matches."})
    recipients = fields.Integer(metadata={"description": "Those who would get a message."})
    in_window_now = fields.Integer(
        metadata={"description": "Recipients inside their send window right now."}
    )
    left_out = fields.Nested(LeftOutSchema)
    forecast = fields.Nested(ForecastSchema)
    sample = fields.Nested(
        SampleSchema,
        allow_none=True,
        metadata={"description": "The first recipient (by id) and the text they would get."},
    )
    sms = fields.Nested(
        SmsForecastSchema,
        metadata={"description": "Channel http only: segments over the audience and their cost."},
    )


class NotificationCountsSchema(DeliverySchema):
    queued = fields.Integer()
    failed = fields.Integer()
    expired = fields.Integer()
    cancelled = fields.Integer()


class NotificationStatsSchema(Schema):
    by_channel = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(NotificationCountsSchema),
        metadata={"description": "Counts by status for every channel, zeros included."},
    )
    total = fields.Nested(NotificationCountsSchema)


class AllStatsSchema(Schema):
    campaigns = fields.List(fields.Nested(CampaignStatsSchema))
    totals = fields.Nested(CountsSchema, metadata={"description": "Campaign messages only."})
    notifications = fields.Nested(NotificationStatsSchema)


class MessageQueryArgsSchema(PageArgsSchema):
    status = Text(validate=validate.OneOf(list(MessageStatus)))


class MessageSchema(Schema):
    id = fields.Integer()
    client_id = fields.Integer(allow_none=True)
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    not_before = fields.AwareDateTime(allow_none=True)
    queued_at = fields.AwareDateTime(allow_none=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    updated_at = fields.AwareDateTime()


class MessagePageSchema(PageSchema):
    items = fields.List(fields.Nested(MessageSchema))
