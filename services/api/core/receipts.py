"""Receipt use cases: map to Herald's outcomes and record the batch in the outbox.

The stats service applies them; recording in the request's transaction means a receipt
answered 202 is published even if RabbitMQ is down at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from services.api.schemas.receipts import epoch
from shared.domain.receipts import Receipt, from_email, from_gateway
from shared.messaging.envelopes import ReceiptBatch
from shared.messaging.topology import OUTCOMES_EXCHANGE, RECEIPT_EMAIL_KEY, RECEIPT_HTTP_KEY
from shared.outbox import record


def accept_gateway(engine: Engine, items: Sequence[dict[str, Any]]) -> dict[str, int]:
    receipts = [
        from_gateway(i["id"], i["status"], i.get("error"), epoch(i.get("at"))) for i in items
    ]
    _record(engine, RECEIPT_HTTP_KEY, receipts)
    return {"accepted": len(receipts)}


def accept_email(engine: Engine, items: Sequence[dict[str, Any]]) -> dict[str, int]:
    mapped = [
        from_email(i["message_id"], i["type"], i["permanent"], i.get("error"), epoch(i.get("at")))
        for i in items
    ]
    receipts = [r for r in mapped if r is not None]
    if receipts:
        _record(engine, RECEIPT_EMAIL_KEY, receipts)
    return {"accepted": len(receipts), "unchanged": len(mapped) - len(receipts)}


def _record(engine: Engine, routing_key: str, receipts: list[Receipt]) -> None:
    with engine.begin() as conn:
        record(conn, OUTCOMES_EXCHANGE, routing_key, ReceiptBatch(tuple(receipts)).payload())
