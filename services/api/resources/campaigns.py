"""/campaigns, /campaigns/preview, /campaigns/{id}, /campaigns/{id}/pause|resume|cancel,
/campaigns/{id}/messages, /campaigns/{id}/retry-failed."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import RowMapping

from services.api.auth import context, request_id
from services.api.core import campaigns as core
from services.api.core.clients import Page
from services.api.core.preview import preview_campaign
from services.api.errors import Blueprint
from services.api.schemas.campaigns import (
    CampaignPageSchema,
    CampaignPatchSchema,
    CampaignQueryArgsSchema,
    CampaignSchema,
    MessagePageSchema,
    MessageQueryArgsSchema,
    PreviewSchema,
    RequeuedSchema,
)

blp = Blueprint(
    "campaigns",
    __name__,
    description="Campaigns: what to send, to whom, and when. Recipients are fixed when a "
    "campaign starts: clients added or changed later do not join it.",
)


@blp.route("")
class Campaigns(MethodView):
    @blp.arguments(CampaignQueryArgsSchema, location="query")
    @blp.response(200, CampaignPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List campaigns, filtered by status and channel, a keyset page at a time"""
        return core.list_campaigns(context().engine, **args)

    @blp.arguments(CampaignSchema)
    @blp.response(201, CampaignSchema)
    def post(self, campaign: dict[str, Any]) -> RowMapping:
        """Schedule a campaign"""
        deps = context()
        return core.create_campaign(
            deps.engine, campaign, request_id(), max_segments=deps.settings.sms_max_segments
        )


@blp.route("/preview")
class CampaignPreview(MethodView):
    @blp.arguments(CampaignSchema)
    @blp.response(200, PreviewSchema)
    def post(self, campaign: dict[str, Any]) -> dict[str, Any]:
        """Preview a campaign without storing it: audience, left out, in window now, forecast

        The forecast is an estimate: recipients / rate (the campaign's rate_limit, the
        channel's ceiling, or an assumed 500/s, whichever is lowest), plus the wait until each
        time zone's window opens, window after window. Retries and other campaigns are ignored.
        """
        deps = context()
        return preview_campaign(deps.engine, deps.settings, campaign)


@blp.route("/<int:campaign_id>")
class CampaignById(MethodView):
    @blp.response(200, CampaignSchema)
    def get(self, campaign_id: int) -> RowMapping:
        """Get a campaign"""
        return core.get_campaign(context().engine, campaign_id)

    @blp.arguments(CampaignSchema)
    @blp.response(200, CampaignSchema)
    def put(self, campaign: dict[str, Any], campaign_id: int) -> RowMapping:
        """Replace a campaign that is still scheduled"""
        deps = context()
        return core.update_campaign(
            deps.engine,
            campaign_id,
            campaign,
            request_id(),
            replace=True,
            max_segments=deps.settings.sms_max_segments,
        )

    @blp.arguments(CampaignPatchSchema)
    @blp.response(200, CampaignSchema)
    def patch(self, changes: dict[str, Any], campaign_id: int) -> RowMapping:
        """Change some fields of a campaign

        Until it starts: any field. Running or paused: only ends_at, rate_limit and send_window,
        applied by the scheduler within a tick; changing anything else is a 409 naming the
        fields. Recipients are fixed when the campaign starts.
        """
        deps = context()
        return core.update_campaign(
            deps.engine,
            campaign_id,
            changes,
            request_id(),
            max_segments=deps.settings.sms_max_segments,
        )

    @blp.response(204)
    def delete(self, campaign_id: int) -> None:
        """Delete a campaign that is not running or paused"""
        core.delete_campaign(context().engine, campaign_id)


@blp.route("/<int:campaign_id>/pause")
class CampaignPause(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> RowMapping:
        """Pause a scheduled or running campaign (idempotent)"""
        return core.apply_action(context().engine, campaign_id, "pause", request_id())


@blp.route("/<int:campaign_id>/resume")
class CampaignResume(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> RowMapping:
        """Resume a paused campaign (idempotent)"""
        return core.apply_action(context().engine, campaign_id, "resume", request_id())


@blp.route("/<int:campaign_id>/cancel")
class CampaignCancel(MethodView):
    @blp.response(200, CampaignSchema)
    def post(self, campaign_id: int) -> RowMapping:
        """Cancel a campaign for good; unsent messages are not sent (idempotent)"""
        return core.apply_action(context().engine, campaign_id, "cancel", request_id())


@blp.route("/<int:campaign_id>/messages")
class CampaignMessages(MethodView):
    @blp.arguments(MessageQueryArgsSchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, args: dict[str, Any], campaign_id: int) -> Page:
        """List a campaign's messages, filtered by status, a keyset page at a time"""
        return core.list_messages(context().engine, campaign_id, **args)


@blp.route("/<int:campaign_id>/retry-failed")
class CampaignRetryFailed(MethodView):
    @blp.response(200, RequeuedSchema)
    def post(self, campaign_id: int) -> dict[str, int]:
        """Send the campaign's failed messages again, while it is within its time range

        They go back to pending with attempts reset (last_error stays until their next
        outcome); a completed campaign runs again. 409 with the reason when it has ended.
        """
        return {"requeued": core.retry_failed(context().engine, campaign_id, request_id())}
