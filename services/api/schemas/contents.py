"""ContentSchema: text, subject and html as templates, checked alike wherever a message's
contents are given (campaigns, stored templates, notifications)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, validate, validates

from services.api.schemas.common import StrictSchema, Text
from shared.domain.campaigns import CONTENT_LIMITS, template_reasons

TEXT_DESCRIPTION = "Template: {{ name }} takes a client field or attribute."


def content_field(name: str, **kwargs: Any) -> Text:
    """A template field of the contents, with its length limit."""
    return Text(validate=validate.Length(min=1, max=CONTENT_LIMITS[name]), **kwargs)


class ContentSchema(StrictSchema):
    text = content_field("text", metadata={"description": TEXT_DESCRIPTION})
    subject = content_field(
        "subject",
        allow_none=True,
        metadata={"description": "E-mail subject (a template); required for channel email."},
    )
    html = content_field(
        "html",
        allow_none=True,
        metadata={
            "description": "E-mail HTML alternative to text (a template whose values are "
            "HTML-escaped); channel email only."
        },
    )

    @validates("text", "subject", "html")
    def template_syntax(self, value: str | None, data_key: str, **_: Any) -> None:
        reasons, _extra = template_reasons({data_key: value})
        if reasons:
            raise ValidationError(reasons[data_key])
