"""/receipts/http (a gateway's delivery receipts) and /receipts/email (bounces, complaints).

Both need a token of the receipts scope, which is good for nothing else.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema

from services.api.auth import context
from services.api.core import receipts as core
from services.api.errors import Blueprint
from services.api.resources.notifications import json_body
from services.api.schemas.receipts import (
    EMAIL_RECEIPT,
    GATEWAY_RECEIPT,
    EmailReceiptSchema,
    GatewayReceiptSchema,
    ReceiptAcceptanceSchema,
    parse_receipts,
)
from shared.domain.receipts import MAX_RECEIPTS

blp = Blueprint(
    "receipts",
    __name__,
    description="Delivery receipts from gateways and bounces from mail providers: a sent "
    "message becomes delivered or undelivered. Needs a token of the receipts scope.",
)


def one_or_many(schema: type[Schema], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        schema,
                        {"type": "array", "items": schema, "minItems": 1, "maxItems": MAX_RECEIPTS},
                    ]
                },
                "examples": {"one": {"value": example}, "array": {"value": [example]}},
            }
        },
    }


@blp.route("/http")
class GatewayReceipts(MethodView):
    @blp.doc(
        requestBody=one_or_many(
            GatewayReceiptSchema, {"id": 42, "status": "undelivered", "error": "absent subscriber"}
        )
    )
    @blp.response(202, ReceiptAcceptanceSchema)
    def post(self) -> dict[str, int]:
        """Accept a gateway's receipts, one or an array of 1 to 1,000

        Expired and rejected count as undelivered, the gateway's word kept in the error. A
        receipt for a message not yet recorded as sent is applied when it is; a repeat
        changes nothing; an unknown id is counted and dropped. Any bad item refuses all (422).
        """
        return core.accept_gateway(context().engine, parse_receipts(json_body(), GATEWAY_RECEIPT))


@blp.route("/email")
class EmailReceipts(MethodView):
    @blp.doc(
        requestBody=one_or_many(
            EmailReceiptSchema,
            {"message_id": "<herald-42@example.org>", "type": "bounce", "permanent": True},
        )
    )
    @blp.response(202, ReceiptAcceptanceSchema)
    def post(self) -> dict[str, int]:
        """Accept bounces and complaints, one or an array of 1 to 1,000

        A permanent bounce or a complaint makes the message undelivered and opts its client
        out of e-mail. A transient bounce changes nothing: it is counted in `unchanged`, not
        `accepted`. Any bad item refuses all (422).
        """
        return core.accept_email(context().engine, parse_receipts(json_body(), EMAIL_RECEIPT))
