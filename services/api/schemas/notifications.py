"""NewNotificationSchema (one item of POST /notifications), the body's two forms, and the
notification as read back.

The body is one notification or an array of them, so it is parsed here item by item: one
bad item refuses only itself in an array, and the whole request when it is alone.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    validate,
    validates_schema,
)

from services.api.schemas.campaigns import TEMPLATE_NAME_PATTERN, WindowSchema
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
from services.api.schemas.contents import ContentSchema
from shared.domain.campaigns import channel_reasons
from shared.domain.notifications import Requested, request_hash
from shared.domain.phones import InvalidPhone, parse_phone
from shared.domain.statuses import NotificationStatus
from shared.errors import InvalidInput

MAX_BATCH = 1000
MAX_KEY_CHARS = 255
ADDRESSES = ("client_id", "phone", "email")


class ToSchema(StrictSchema):
    client_id = fields.Integer(
        validate=validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "A stored client: its address for the channel is used."},
    )
    phone = Text(
        validate=validate.Length(min=1, max=32),
        metadata={"description": "Stored in E.164, as a client's.", "example": "+79123456789"},
    )
    email = EmailText(validate=validate.Length(max=320))

    @post_load
    def normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "phone" in data:
            try:
                data["phone"] = parse_phone(data["phone"]).e164
            except InvalidPhone as exc:
                raise ValidationError({"phone": [str(exc)]}) from exc
        return data


class SendWindowSchema(WindowSchema):
    timezone = timezone_field(
        metadata={"description": "Defaults to the client's time zone, else UTC."}
    )


class NewNotificationSchema(ContentSchema):
    channel = Text(required=True, validate=KnownChannel())
    to = fields.Nested(
        ToSchema,
        required=True,
        metadata={
            "description": "Exactly one of client_id, phone or email, fitting the channel "
            "(http: a phone, email: an e-mail address)."
        },
    )
    template = Text(
        validate=validate.Regexp(TEMPLATE_NAME_PATTERN, error="not a template name"),
        metadata={"description": "A stored template of the same channel, instead of text."},
    )
    variables = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=64)),
        values=Scalar(),
        load_default=dict,
        validate=validate.Length(max=1000),
        metadata={
            "description": "Template values; over the client's fields and attributes when "
            "`to` names a client. Every variable used must have one."
        },
    )
    expires_at = fields.AwareDateTime(
        metadata={"description": "Not sent after this; in the future. Defaults to now + 1 h."}
    )
    send_window = fields.Nested(
        SendWindowSchema,
        metadata={"description": "Local hours it may be sent in; may wrap midnight."},
    )
    idempotency_key = Text(
        validate=validate.Length(min=1, max=MAX_KEY_CHARS),
        metadata={"description": "Like the Idempotency-Key header, per item of an array."},
    )

    @validates_schema
    def cross_field(self, data: dict[str, Any], **_: Any) -> None:
        reasons: dict[str, Any] = {}
        given = [name for name in ADDRESSES if name in data.get("to", {})]
        if "to" in data and len(given) != 1:
            reasons["to"] = [f"give exactly one of {', '.join(ADDRESSES)}"]
        if data.get("template") is not None:
            for name in ("text", "html"):
                if name in data:
                    reasons[name] = ["comes from the template; give text or template"]
        elif "text" not in data:
            reasons["text"] = ["give text or template"]
        else:
            reasons.update(
                channel_reasons(data.get("channel"), data.get("subject"), data.get("html"))
            )
        if reasons:
            raise ValidationError(reasons)


class IdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = Text(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=MAX_KEY_CHARS),
        metadata={
            "description": "For one notification: a retry with the same key and body within "
            "24 hours answers the first one's id (Idempotent-Replayed: true); another body is "
            "a 409. Arrays carry idempotency_key per item instead."
        },
    )


def parse_notifications(body: Any, header_key: str | None) -> tuple[bool, list[Requested]]:
    """Whether the body is an array, and each item loaded or refused with its reasons.

    InvalidInput when the body as a whole is not acceptable (nothing is stored then).
    """
    if isinstance(body, dict):
        return False, [load_item(body, header_key)]
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_BATCH:
        raise InvalidInput(
            f"the body must be a notification or an array of 1 to {MAX_BATCH} of them",
            {"_schema": [f"an object, or an array of 1 to {MAX_BATCH} objects"]},
        )
    misfits = {
        str(i): ["must be an object"] for i, item in enumerate(body) if not isinstance(item, dict)
    }
    if misfits:
        raise InvalidInput("every item of the array must be a notification object", misfits)
    if header_key is not None:
        raise InvalidInput(
            "the Idempotency-Key header is for one notification",
            {"idempotency_key": ["in an array, give each item its own idempotency_key"]},
        )
    return True, [load_item(item, None) for item in body]


# One instance for every item: building a schema costs three times what loading an item does.
NEW_NOTIFICATION = NewNotificationSchema()


def load_item(item: dict[str, Any], header_key: str | None) -> Requested:
    digest = request_hash(item)
    try:
        values = NEW_NOTIFICATION.load(item)
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return Requested(None, errors, digest, None)
    key = values.pop("idempotency_key", None)
    if header_key is not None and key is not None and key != header_key:
        reasons = {"idempotency_key": ["differs from the Idempotency-Key header"]}
        return Requested(None, reasons, digest, None)
    return Requested(values, None, digest, header_key or key)


class ItemResultSchema(Schema):
    id = fields.Integer()
    status = fields.String(validate=validate.OneOf(list(NotificationStatus)))
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Why this item was refused, by field; nothing was stored."},
    )


class AcceptanceSchema(ItemResultSchema):
    items = fields.List(
        fields.Nested(ItemResultSchema),
        metadata={"description": "For an array: one result per item, in order."},
    )

    @pre_dump
    def as_object(self, body: dict[str, Any], **_: Any) -> SimpleNamespace:
        """A dict lookup of "items" would find dict.items when the key is absent."""
        return SimpleNamespace(**body)


class NotificationSchema(Schema):
    id = fields.Integer()
    channel = fields.String()
    client_id = fields.Integer(allow_none=True)
    address = fields.String()
    status = fields.String(validate=validate.OneOf(list(NotificationStatus)))
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    template = fields.String(allow_none=True)
    not_before = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    released_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When handed to a sender; cancel refuses."}
    )
    sent_at = fields.AwareDateTime(allow_none=True)


class NotificationQueryArgsSchema(PageArgsSchema):
    status = Text(validate=validate.OneOf(list(NotificationStatus)))


class NotificationPageSchema(PageSchema):
    items = fields.List(fields.Nested(NotificationSchema))
