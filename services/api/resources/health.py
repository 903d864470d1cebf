"""/healthz (the process answers) and /readyz (the database and the broker answer)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields

from services.api.auth import context
from services.api.core.stats import is_database_ready
from services.api.errors import Blueprint

blp = Blueprint("health", __name__, description="Liveness and readiness probes (no token).")


class HealthSchema(Schema):
    status = fields.String()


class ReadinessSchema(Schema):
    status = fields.String(metadata={"description": "ok or degraded"})
    database = fields.String()
    broker = fields.String()


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The process is alive"""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="A dependency is down")
    def get(self) -> Any:
        """The database and the message broker answer"""
        deps = context()
        checks = {
            "database": "ok" if is_database_ready(deps.engine) else "down",
            "broker": "ok" if deps.broker_ready() else "down",
        }
        healthy = all(state == "ok" for state in checks.values())
        return {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503
