"""/campaigns/{id}/stats, /campaigns/{id}/timeline and /stats: progress read models."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.api.auth import context
from services.api.core import stats as core
from services.api.core.timeline import deliveries_over_time
from services.api.errors import Blueprint
from services.api.schemas.campaigns import (
    AllStatsSchema,
    CampaignStatsSchema,
    TimelineArgsSchema,
    TimelineSchema,
)

blp = Blueprint("stats", __name__, description="Progress: counts by status, rate, ETA.")


@blp.route("/campaigns/<int:campaign_id>/stats")
class CampaignStats(MethodView):
    @blp.response(200, CampaignStatsSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """Progress of one campaign: counts by status, percent done, current rate, ETA"""
        return core.campaign_stats(context().engine, campaign_id)


@blp.route("/campaigns/<int:campaign_id>/timeline")
class CampaignTimeline(MethodView):
    @blp.arguments(TimelineArgsSchema, location="query")
    @blp.response(200, TimelineSchema)
    def get(self, args: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Deliveries over time: the campaign's sends per bucket, for a chart

        Without bucket_s the width is chosen so the campaign fits in about 60 points. To
        follow a running campaign, pass the bucket_s you got and since= the last point's
        time: only buckets from that one on are read and returned.
        """
        return deliveries_over_time(context().engine, campaign_id, **args)


@blp.route("/stats")
class AllStats(MethodView):
    @blp.response(200, AllStatsSchema)
    def get(self) -> dict[str, Any]:
        """Progress of every campaign, and the counts summed"""
        return core.all_stats(context().engine)
