"""/notifications (one or an array), /notifications/{id}, /notifications/{id}/cancel."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema
from sqlalchemy import RowMapping
from webargs import missing

from services.api.auth import context
from services.api.core import notifications as core
from services.api.core.clients import Page
from services.api.errors import Blueprint
from services.api.schemas.notifications import (
    MAX_BATCH,
    AcceptanceSchema,
    IdempotencyHeaderSchema,
    NewNotificationSchema,
    NotificationPageSchema,
    NotificationQueryArgsSchema,
    NotificationSchema,
    parse_notifications,
)

blp = Blueprint(
    "notifications",
    __name__,
    description="Notifications: one message an application asks for, sent ahead of campaigns "
    "in the channel's priority lane. Rendered and addressed when accepted. Opt-outs apply to "
    "campaigns only: a notification is transactional.",
)

EXAMPLE = {
    "channel": "http",
    "to": {"client_id": 42},
    "text": "Your code is {{ code }}",
    "variables": {"code": "123456"},
    "send_window": {"start": "08:00", "end": "22:00"},
}
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    NewNotificationSchema,
                    {
                        "type": "array",
                        "items": NewNotificationSchema,
                        "minItems": 1,
                        "maxItems": MAX_BATCH,
                    },
                ]
            },
            "examples": {
                "one": {"value": EXAMPLE},
                "array": {
                    "value": [
                        {**EXAMPLE, "idempotency_key": "order-17-code"},
                        {"channel": "email", "to": {"email": "ann@example.org"},
                         "template": "order-shipped", "variables": {"order": "A-17"}},
                    ]
                },
            },
        }
    },
}  # fmt: skip
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true when the Idempotency-Key named an earlier notification",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def json_body() -> Any:
    """The request's JSON, parsed as every view's (415 when not JSON, 422 when malformed)."""
    body = Blueprint.ARGUMENTS_PARSER.load_json(request, Schema())
    if body is missing:
        abort(422, message="a JSON body is required")
    return body


@blp.route("")
class Notifications(MethodView):
    @blp.arguments(NotificationQueryArgsSchema, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List notifications, filtered by status, a keyset page at a time"""
        return core.list_notifications(context().engine, **args)

    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.doc(requestBody=REQUEST_BODY)
    @blp.response(202, AcceptanceSchema, headers=REPLAYED)
    def post(self, headers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Accept one notification, or an array of 1 to 1,000, to send as soon as allowed

        One object answers {id, status}; a replay of its Idempotency-Key answers the first
        notification (header Idempotent-Replayed: true), the key with another body a 409, an
        invalid notification a 422. An array answers {items} in order, {id, status} or
        {errors} per item: the valid ones are stored, the others refused with their reasons.
        """
        is_batch, items = parse_notifications(json_body(), headers.get("idempotency_key"))
        deps = context()
        accepted = core.accept(
            deps.engine, items, is_batch=is_batch, max_segments=deps.settings.sms_max_segments
        )
        return accepted.body, {"Idempotent-Replayed": "true"} if accepted.is_replay else {}


@blp.route("/<int:notification_id>")
class NotificationById(MethodView):
    @blp.response(200, NotificationSchema)
    def get(self, notification_id: int) -> RowMapping:
        """Get a notification and where it is"""
        return core.get_notification(context().engine, notification_id)


@blp.route("/<int:notification_id>/cancel")
class NotificationCancel(MethodView):
    @blp.response(200, NotificationSchema)
    def post(self, notification_id: int) -> RowMapping:
        """Cancel a queued notification; 409 once released to a sender or final"""
        return core.cancel(context().engine, notification_id)
