"""/campaigns/{id}/stats and /stats: progress read models."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.api.auth import context
from services.api.core import stats as core
from services.api.errors import Blueprint
from services.api.schemas.campaigns import AllStatsSchema, CampaignStatsSchema

blp = Blueprint("stats", __name__, description="Progress: counts by status, rate, ETA.")


@blp.route("/campaigns/<int:campaign_id>/stats")
class CampaignStats(MethodView):
    @blp.response(200, CampaignStatsSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """Progress of one campaign: counts by status, percent done, current rate, ETA"""
        return core.campaign_stats(context().engine, campaign_id)


@blp.route("/stats")
class AllStats(MethodView):
    @blp.response(200, AllStatsSchema)
    def get(self) -> dict[str, Any]:
        """Progress of every campaign, and the counts summed"""
        return core.all_stats(context().engine)
