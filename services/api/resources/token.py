"""/token: what the caller's token may do, so a client (the console) shows only what it can use."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from services.api.auth import token_scope
from services.api.errors import Blueprint

blp = Blueprint("token", __name__, description="The caller's token.")


class TokenSchema(Schema):
    scope = fields.String(
        validate=validate.OneOf(["read", "write"]),
        metadata={"description": "read: every GET; write: every request."},
    )


@blp.route("")
class Token(MethodView):
    @blp.response(200, TokenSchema)
    def get(self) -> dict[str, str]:
        """The scope of the bearer token sent"""
        return {"scope": token_scope()}
