"""/clients, /clients/{id}, /clients/import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from sqlalchemy import RowMapping

from services.api.auth import context
from services.api.core import clients as core
from services.api.core.clients import Page
from services.api.core.importer import BodyKind, import_clients
from services.api.errors import Blueprint
from services.api.schemas.clients import (
    ClientPageSchema,
    ClientPatchSchema,
    ClientQueryArgsSchema,
    ClientSchema,
    ImportReportSchema,
)
from shared.errors import InvalidInput

blp = Blueprint("clients", __name__, description="Recipients: phone, tags, time zone, attributes.")

IMPORT_KINDS: dict[str, BodyKind] = {"application/json": "json", "text/csv": "csv"}
IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "items": ClientSchema}},
        "text/csv": {
            "schema": {"type": "string"},
            "example": "phone,tags,timezone,first_name\n+79123456789,vip;beta,Europe/Moscow,Ann\n",
        },
    },
}


@blp.route("")
class Clients(MethodView):
    @blp.arguments(ClientQueryArgsSchema, location="query")
    @blp.response(200, ClientPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List clients, filtered by tag and operator code, a keyset page at a time"""
        return core.list_clients(context().engine, **args)

    @blp.arguments(ClientSchema)
    @blp.response(201, ClientSchema)
    def post(self, client: dict[str, Any]) -> RowMapping:
        """Add a client"""
        return core.create_client(context().engine, client)


@blp.route("/<int:client_id>")
class ClientById(MethodView):
    @blp.response(200, ClientSchema)
    def get(self, client_id: int) -> RowMapping:
        """Get a client"""
        return core.get_client(context().engine, client_id)

    @blp.arguments(ClientSchema)
    @blp.response(200, ClientSchema)
    def put(self, client: dict[str, Any], client_id: int) -> RowMapping:
        """Replace a client"""
        return core.update_client(context().engine, client_id, client)

    @blp.arguments(ClientPatchSchema)
    @blp.response(200, ClientSchema)
    def patch(self, changes: dict[str, Any], client_id: int) -> RowMapping:
        """Change some fields of a client"""
        return core.update_client(context().engine, client_id, changes)

    @blp.response(204)
    def delete(self, client_id: int) -> None:
        """Delete a client; its pending messages are cancelled, sent ones stay in history"""
        core.delete_client(context().engine, client_id)


@blp.route("/import")
class ClientImport(MethodView):
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(200, ImportReportSchema)
    def post(self) -> Any:
        """Upsert clients by phone from a JSON array or a CSV file (streamed)

        CSV: a header row with phone, operator_code, tags (separated by ';' or '|'), timezone,
        email; any other column becomes an attribute. Rows are numbered from 1 after the header.
        """
        kind = IMPORT_KINDS.get(request.mimetype)
        if kind is None:
            abort(415, message="send application/json (an array of clients) or text/csv")
        # flask_smorest ships no types, so mypy cannot see that abort() narrowed `kind`.
        return import_clients(context().engine, request.stream, kind, validate_client)  # type: ignore[arg-type]


IMPORT_SCHEMA = ClientSchema()


def validate_client(record: Mapping[str, Any]) -> dict[str, Any]:
    """Load one import record with the same rules as POST /clients."""
    try:
        return IMPORT_SCHEMA.load(record)
    except ValidationError as exc:
        raise InvalidInput("invalid client", exc.normalized_messages()) from exc
