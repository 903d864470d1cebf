"""TemplateSchema (POST; PUT without the name): a stored text, subject and html for a channel."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.api.schemas.campaigns import TEMPLATE_NAME_PATTERN
from services.api.schemas.channels import KnownChannel
from services.api.schemas.common import Text
from services.api.schemas.contents import ContentSchema, content_field
from shared.domain.campaigns import channel_reasons


class TemplateBodySchema(ContentSchema):
    channel = Text(required=True, validate=KnownChannel())
    text = content_field(
        "text",
        required=True,
        metadata={"description": "Template: {{ name }} takes a variable given when it is used."},
    )
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)

    @validates_schema
    def channel_needs(self, data: dict[str, Any], **_: Any) -> None:
        reasons = channel_reasons(data.get("channel"), data.get("subject"), data.get("html"))
        if reasons:
            raise ValidationError(reasons)


class TemplateSchema(TemplateBodySchema):
    name = Text(
        required=True,
        validate=validate.Regexp(
            TEMPLATE_NAME_PATTERN,
            error="1 to 100 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
        ),
        metadata={"example": "order-shipped"},
    )
