"""WebhookSchema (POST), WebhookPatchSchema, WebhookPageSchema, DeliveryPageSchema: subscriptions
and the record of their attempts.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from services.api.schemas.common import (
    DEFAULT_PAGE,
    MAX_PAGE,
    PageSchema,
    StrictSchema,
    Text,
)
from shared.domain.webhooks import EVENT_TYPES

MAX_URL_CHARS = 2000


def url_field(**kwargs: Any) -> Text:
    return Text(
        validate=validate.Length(min=1, max=MAX_URL_CHARS),
        metadata={
            "description": "http(s) URL the events are POSTed to; loopback, private, link-local "
            "and metadata addresses are refused.",
            "example": "https://example.org/herald-events",
        },
        **kwargs,
    )


def events_field(**kwargs: Any) -> fields.List:
    return fields.List(
        Text(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={"description": "Event types to receive.", "example": ["message.sent"]},
        **kwargs,
    )


class WebhookSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    url = url_field(required=True)
    events = events_field(required=True)
    description = Text(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_URL_CHARS)
    )
    enabled = fields.Boolean(dump_only=True)
    failing_since = fields.AwareDateTime(dump_only=True, allow_none=True)
    disabled_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    disabled_reason = Text(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class NewWebhookSchema(WebhookSchema):
    secret = Text(
        dump_only=True,
        metadata={
            "description": "Signing secret (Standard Webhooks, whsec_...): shown only in this "
            "answer; keep it to verify the webhook-signature header."
        },
    )


class WebhookPatchSchema(StrictSchema):
    url = url_field()
    events = events_field()
    description = Text(allow_none=True, validate=validate.Length(max=MAX_URL_CHARS))
    enabled = fields.Boolean(
        metadata={"description": "true re-enables a disabled subscription and clears its marks."}
    )


class WebhookPageSchema(PageSchema):
    items = fields.List(fields.Nested(WebhookSchema))


class DeliveryQueryArgsSchema(StrictSchema):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Page size, at most {MAX_PAGE}."},
    )
    before = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0),
        metadata={"description": "Return attempts older than this one (next_before)."},
    )


class DeliverySchema(StrictSchema):
    id = fields.Integer()
    attempted_at = fields.AwareDateTime()
    event_id = fields.Integer(metadata={"description": "The webhook-id header is evt_<event_id>."})
    events = fields.Integer(metadata={"description": "Events in the POSTed array."})
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Float(allow_none=True)
    error = Text(allow_none=True)


class DeliveryPageSchema(StrictSchema):
    items = fields.List(fields.Nested(DeliverySchema))
    next_before = fields.Integer(
        allow_none=True,
        metadata={"description": "Pass as ?before= for the next page; null on the last page."},
    )
