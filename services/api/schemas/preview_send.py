"""TestSendSchema (where to send one preview) and TestSendResultSchema (how it went)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.api.schemas.campaigns import CampaignSchema
from services.api.schemas.common import StrictSchema, Text


class TestSendSchema(StrictSchema):
    address = Text(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata={
            "description": "An e-mail address for an email campaign, a phone for an http one.",
            "example": "ann@example.com",
        },
    )


class DraftTestSendSchema(CampaignSchema):
    """A campaign body as for POST /campaigns, and where to send its one preview."""

    test_address = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=320),
        metadata={"description": "An e-mail address for an email campaign, a phone otherwise."},
    )


class TestSendResultSchema(Schema):
    kind = fields.String(
        validate=validate.OneOf(["sent", "transient", "permanent", "expired"]),
        metadata={"description": "sent, or why not: transient (try again) or permanent."},
    )
    error = fields.String(allow_none=True, metadata={"description": "The channel's answer."})
    message_id = fields.Integer(
        metadata={"description": "The preview's own id (Message-ID, idempotency key)."}
    )
    address = fields.String(metadata={"description": "Where it went (a phone in E.164)."})
    client_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The client whose fields filled the template; null: none."},
    )
