"""A gateway's delivery receipt and a mail provider's bounce or complaint, one or an array.

The body is parsed here item by item; any bad item refuses the whole request, its reasons
keyed by path ("0.status" in an array, "status" for one object), and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.api.schemas.common import StrictSchema, Text
from shared.domain.receipts import EMAIL_TYPES, GATEWAY_STATUSES, MAX_RECEIPTS, id_from_reference
from shared.errors import InvalidInput

MAX_ERROR_CHARS = 2000
MAX_ID = 2**63 - 1


def _at_field() -> fields.AwareDateTime:
    return fields.AwareDateTime(
        metadata={"description": "When the gateway saw it, ISO-8601 with offset; default now."}
    )


class GatewayReceiptSchema(StrictSchema):
    id = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "The message id Herald sent to the gateway."},
    )
    status = Text(required=True, validate=validate.OneOf(GATEWAY_STATUSES))
    error = Text(
        allow_none=True,
        validate=validate.Length(max=MAX_ERROR_CHARS),
        metadata={"description": "The gateway's error text or code; kept when undelivered."},
    )
    at = _at_field()


class MessageReference(fields.Field):
    """Herald's message id, as an integer or a string, or its Message-ID header."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise ValidationError("an integer id or a Message-ID header")
        if isinstance(value, str) and len(value) > 1000:
            raise ValidationError("too long for a Message-ID")
        found = id_from_reference(value)
        if found is None or found > MAX_ID:
            raise ValidationError("names no Herald message: give its id or <herald-ID@domain>")
        return found


class EmailReceiptSchema(StrictSchema):
    message_id = MessageReference(
        required=True,
        metadata={
            "description": "Herald's message id, or the Message-ID header Herald sent.",
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}],
            "example": "<herald-42@example.org>",
        },
    )
    type = Text(required=True, validate=validate.OneOf(EMAIL_TYPES))
    # JSON true or false only: marshmallow's Boolean would take "yes" or 1 for true.
    permanent = fields.Boolean(
        truthy={True},
        falsy={False},
        load_default=False,
        metadata={"description": "For a bounce: true if hard. A soft one changes nothing."},
    )
    error = Text(allow_none=True, validate=validate.Length(max=MAX_ERROR_CHARS))
    at = _at_field()


class ReceiptAcceptanceSchema(Schema):
    accepted = fields.Integer(
        required=True, metadata={"description": "Receipts recorded, to be applied shortly."}
    )
    unchanged = fields.Integer(
        metadata={"description": "E-mail only: transient bounces, which change nothing."}
    )


def parse_receipts(body: Any, schema: Schema) -> list[dict[str, Any]]:
    """Every item of a receipt body loaded, or InvalidInput naming each bad field's path."""
    is_batch = isinstance(body, list)
    items = body if is_batch else [body]
    if not is_batch and not isinstance(body, dict) or not 1 <= len(items) <= MAX_RECEIPTS:
        raise InvalidInput(
            f"the body must be a receipt or an array of 1 to {MAX_RECEIPTS} of them",
            {"_schema": [f"an object, or an array of 1 to {MAX_RECEIPTS} objects"]},
        )
    loaded: list[dict[str, Any]] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        prefix = f"{index}." if is_batch else ""
        if not isinstance(item, dict):
            errors[str(index)] = ["must be an object"]
            continue
        try:
            loaded.append(schema.load(item))
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            errors.update({f"{prefix}{name}": why for name, why in messages.items()})
    if errors:
        raise InvalidInput("receipts refused; nothing was recorded", errors)
    return loaded


def epoch(at: dt.datetime | None) -> float:
    """A receipt's time in epoch seconds; now when it gave none."""
    return (at or dt.datetime.now(dt.UTC)).timestamp()


GATEWAY_RECEIPT = GatewayReceiptSchema()
EMAIL_RECEIPT = EmailReceiptSchema()
