"""OptOutSchema: what an unsubscribe link names and whether that recipient has opted out."""

from __future__ import annotations

from marshmallow import Schema, fields


class OptOutSchema(Schema):
    client_id = fields.Integer()
    channel = fields.String(metadata={"description": "The channel the link unsubscribes from."})
    opted_out = fields.Boolean(metadata={"description": "Whether the opt-out is recorded."})
    address = fields.String(
        allow_none=True, metadata={"description": "The recipient's address, partly masked."}
    )
