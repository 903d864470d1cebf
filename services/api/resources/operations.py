"""/operations: the whole system at a glance, for the console and for a quick check."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from services.api.auth import context
from services.api.core.operations import operations
from services.api.errors import Blueprint
from services.api.schemas.operations import OperationsSchema

blp = Blueprint("operations", __name__, description="Operations at a glance.")
DEAD_LETTERS = "herald.dead_letters"


@blp.route("")
class Operations(MethodView):
    @blp.response(200, OperationsSchema)
    def get(self) -> dict[str, Any]:
        """Totals, campaigns by status, parked messages, the senders' breakers"""
        deps = context()
        return operations(deps.engine, deps.settings, current_app.extensions[DEAD_LETTERS])
