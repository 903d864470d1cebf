"""OperationsSchema: what GET /operations answers."""

from __future__ import annotations

from marshmallow import Schema, fields

from services.api.schemas.campaigns import CountsSchema

BREAKER = "closed, open or half-open (trial deliveries)"


class SenderHealthSchema(Schema):
    instance = fields.String(metadata={"description": "host.pid.random of the sender process."})
    seen_at = fields.AwareDateTime(metadata={"description": "When stats last heard from it."})
    circuits = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": f"The channel-wide breaker of each channel: {BREAKER}."},
    )
    gateways = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": f"Each SMS gateway's breaker: {BREAKER}."},
    )


class LinksSchema(Schema):
    docs = fields.String()
    metrics = fields.String()
    broker_ui = fields.List(fields.String(), metadata={"description": "Each node's management UI."})


class OperationsSchema(Schema):
    totals = fields.Nested(CountsSchema, metadata={"description": "Campaign messages by status."})
    campaigns_by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    dead_letters = fields.Integer(
        allow_none=True,
        metadata={"description": "Messages parked in deliver.dead; null: the broker cannot say."},
    )
    breaker = fields.String(
        metadata={"description": "The worst breaker state over live senders; unknown: none."}
    )
    senders = fields.List(
        fields.Nested(SenderHealthSchema),
        metadata={"description": "Senders heard from within HERALD_SENDER_HEALTH_STALE_S."},
    )
    links = fields.Nested(LinksSchema)
