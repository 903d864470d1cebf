"""/campaigns/{id}/test and /campaigns/preview/test: one preview of a campaign's message, now.

The messenger is the sender's own, built for the request: the preview goes out as mail would.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from flask.views import MethodView

from services.api.auth import context
from services.api.core import preview_send as core
from services.api.errors import Blueprint
from services.api.schemas.preview_send import (
    DraftTestSendSchema,
    TestSendResultSchema,
    TestSendSchema,
)
from shared.channels.registry import build_registry
from shared.config import Settings
from shared.domain.outcomes import DeliveryResult
from shared.messaging.envelopes import DeliveryItem

blp = Blueprint(
    "test-sends", __name__, description="Previews: one campaign message to one address."
)


@blp.route("/<int:campaign_id>/test")
class CampaignTestSend(MethodView):
    @blp.arguments(TestSendSchema)
    @blp.response(200, TestSendResultSchema)
    def post(self, body: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Send one preview of the campaign's message to an address and say how it went"""
        deps = context()
        deliver = deliverer(deps.settings)
        return core.send_preview(deps.engine, campaign_id, body["address"], deliver)


@blp.route("/preview/test")
class DraftTestSend(MethodView):
    @blp.arguments(DraftTestSendSchema)
    @blp.response(200, TestSendResultSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one preview of a campaign not stored yet (the body of POST /campaigns)

        The campaign is checked as on create; nothing is stored.
        """
        deps = context()
        address = body.pop("test_address")
        return core.send_draft_preview(deps.engine, body, address, deliverer(deps.settings))


def deliverer(settings: Settings) -> core.Deliver:
    def deliver(channel: str, item: DeliveryItem) -> DeliveryResult:
        # A channel's factory makes a blocking messenger, or (a coroutine) an async one.
        factory: Callable[[], Any] = build_registry(settings)[channel]
        if inspect.iscoroutinefunction(factory):
            return asyncio.run(deliver_async(factory, item))
        messenger = factory()
        try:
            return messenger.send(item)
        finally:
            messenger.close()

    return deliver


async def deliver_async(
    factory: Callable[[], Awaitable[Any]], item: DeliveryItem
) -> DeliveryResult:
    messenger = await factory()
    try:
        return await messenger.send(item)
    finally:
        await messenger.close()
