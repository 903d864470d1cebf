"""/templates, /templates/{name}."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import RowMapping

from services.api.auth import context
from services.api.core import templates as core
from services.api.errors import Blueprint
from services.api.schemas.templates import TemplateBodySchema, TemplateSchema

blp = Blueprint(
    "templates",
    __name__,
    description="Stored texts for a channel. Campaigns and notifications copy a template's "
    "text, subject and html when they are created: later changes do not reach them.",
)


@blp.route("")
class Templates(MethodView):
    @blp.response(200, TemplateSchema(many=True))
    def get(self) -> list[RowMapping]:
        """List every template, by name"""
        return core.list_templates(context().engine)

    @blp.arguments(TemplateSchema)
    @blp.response(201, TemplateSchema)
    def post(self, template: dict[str, Any]) -> RowMapping:
        """Store a template; 409 if the name is taken"""
        return core.create_template(context().engine, template)


@blp.route("/<string:name>")
class TemplateByName(MethodView):
    @blp.response(200, TemplateSchema)
    def get(self, name: str) -> RowMapping:
        """Get a template"""
        return core.get_template(context().engine, name)

    @blp.arguments(TemplateBodySchema)
    @blp.response(200, TemplateSchema)
    def put(self, template: dict[str, Any], name: str) -> RowMapping:
        """Replace a template; what campaigns and notifications copied stays as it was"""
        return core.replace_template(context().engine, name, template)

    @blp.response(204)
    def delete(self, name: str) -> None:
        """Delete a template; campaigns and notifications keep their copies"""
        core.delete_template(context().engine, name)
