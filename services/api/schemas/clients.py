"""ClientSchema, ClientQueryArgsSchema, ClientPageSchema, ImportReportSchema."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from services.api.schemas.channels import KnownChannel
from services.api.schemas.common import (
    EmailText,
    PageArgsSchema,
    PageSchema,
    Scalar,
    StrictSchema,
    Text,
    timezone_field,
)
from shared.domain.phones import InvalidPhone, parse_phone

OPERATOR_CODE = validate.Regexp(r"^[0-9]{1,8}$", error="must be 1 to 8 digits")
TAG = validate.Length(min=1, max=64)
PHONE_PREFIX = validate.Regexp(
    r"^\+?[0-9][0-9 ()-]{0,30}$", error="must be digits of a phone, country code first"
)


class ClientSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    phone = Text(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "International number, '+' and country code (or digits starting "
            "with the country code); stored in E.164.",
            "example": "+79123456789",
        },
    )
    operator_code = Text(
        validate=OPERATOR_CODE,
        metadata={"description": "Defaults to the first three digits of the national number."},
    )
    tags = fields.List(Text(validate=TAG), load_default=list, validate=validate.Length(max=100))
    timezone = timezone_field(load_default="UTC")
    email = EmailText(allow_none=True, load_default=None, validate=validate.Length(max=320))
    attributes = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=64)),
        values=Scalar(),
        load_default=dict,
        metadata={"description": "Template variables: string keys, string/number/bool values."},
    )
    opted_out = fields.List(
        Text(validate=KnownChannel()),
        validate=validate.Length(max=64),
        metadata={
            "description": "Channels the client opted out of (their unsubscribe links add to "
            "it); never sent to on these. Left out of a PUT, it stays as it is."
        },
    )
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)

    @post_load
    def normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Store the phone in E.164 and derive the operator code unless given."""
        if "opted_out" in data:
            data["opted_out"] = list(dict.fromkeys(data["opted_out"]))
        if "phone" not in data:
            return data
        try:
            phone = parse_phone(data["phone"])
        except InvalidPhone as exc:
            raise ValidationError({"phone": [str(exc)]}) from exc
        data["phone"] = phone.e164
        data.setdefault("operator_code", phone.operator_code)
        if "tags" in data:
            data["tags"] = list(dict.fromkeys(data["tags"]))
        return data


class ClientPatchSchema(ClientSchema):
    """Any subset of the client's fields."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


class ClientQueryArgsSchema(PageArgsSchema):
    tag = Text(validate=TAG, metadata={"description": "Only clients with this tag."})
    operator_code = Text(validate=OPERATOR_CODE, metadata={"description": "Only this code."})
    phone = Text(
        validate=PHONE_PREFIX,
        metadata={
            "description": "Only phones starting with these digits (country code first; "
            "'+', spaces, dashes and brackets are ignored).",
            "example": "+7 912",
        },
    )

    @post_load
    def phone_digits(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "phone" in data:
            data["phone"] = "+" + "".join(ch for ch in data["phone"] if ch.isdigit())
        return data


class ClientPageSchema(PageSchema):
    items = fields.List(fields.Nested(ClientSchema))


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "1-based position of the record in the body."})
    phone = fields.Raw(allow_none=True, metadata={"description": "The phone as given."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Reasons by field, nested as the record is (as for POST)."},
    )


class ImportReportSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    rejected = fields.Integer()
    errors = fields.List(
        fields.Nested(RowErrorSchema),
        metadata={"description": "Reasons for rejected rows (the first 1,000)."},
    )
