"""/webhooks, /webhooks/{id}, /webhooks/{id}/deliveries."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import RowMapping

from services.api.auth import context
from services.api.core import webhooks as core
from services.api.core.clients import Page
from services.api.errors import Blueprint
from services.api.schemas.common import PageArgsSchema
from services.api.schemas.webhooks import (
    DeliveryPageSchema,
    DeliveryQueryArgsSchema,
    NewWebhookSchema,
    WebhookPageSchema,
    WebhookPatchSchema,
    WebhookSchema,
)

blp = Blueprint(
    "webhooks",
    __name__,
    description="Webhooks: events POSTed to your URL, signed as the Standard Webhooks spec says "
    "(webhook-id, webhook-timestamp, webhook-signature). The body is a JSON array of "
    "{type, timestamp, data}; message and notification events come up to 500 in one POST. "
    "Delivered at least once (dedupe by webhook-id), retried with growing delays for 24 hours; "
    "a subscription failing for 24 hours is disabled.",
)


@blp.route("")
class Webhooks(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, WebhookPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List webhook subscriptions, a keyset page at a time"""
        return core.list_webhooks(context().engine, **args)

    @blp.arguments(WebhookSchema)
    @blp.response(201, NewWebhookSchema)
    def post(self, webhook: dict[str, Any]) -> RowMapping:
        """Subscribe a URL to event types; the answer holds the signing secret, shown only once"""
        ctx = context()
        return core.create_webhook(ctx.engine, webhook, ctx.settings.webhook_allow_private)


@blp.route("/<int:webhook_id>")
class WebhookById(MethodView):
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id: int) -> RowMapping:
        """Get a webhook subscription (without its secret)"""
        return core.get_webhook(context().engine, webhook_id)

    @blp.arguments(WebhookPatchSchema)
    @blp.response(200, WebhookSchema)
    def patch(self, changes: dict[str, Any], webhook_id: int) -> RowMapping:
        """Change a subscription's url, events, description or enabled"""
        ctx = context()
        allow_private = ctx.settings.webhook_allow_private
        return core.patch_webhook(ctx.engine, webhook_id, changes, allow_private)

    @blp.response(204)
    def delete(self, webhook_id: int) -> None:
        """Delete a subscription and the events still owed to it"""
        core.delete_webhook(context().engine, webhook_id)


@blp.route("/<int:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.arguments(DeliveryQueryArgsSchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, args: dict[str, Any], webhook_id: int) -> dict[str, Any]:
        """List a subscription's delivery attempts, newest first"""
        return core.list_deliveries(context().engine, webhook_id, **args)
