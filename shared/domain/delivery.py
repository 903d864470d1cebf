"""What a campaign's or a channel's counts say about delivery, once receipts come back.

A message the gateway took is stored `sent` until its receipt moves it to `delivered` or
`undelivered`; users see `sent` as everything the gateway took, so it stays equal to the
recipients at the end whether receipts came or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from shared.domain.statuses import ACCEPTED_STATUSES


class DeliveryFigures(TypedDict):
    sent: int
    delivered: int
    undelivered: int
    awaiting_receipt: int
    delivery_rate: float | None


def delivery_figures(stored: Mapping[str, Any]) -> DeliveryFigures:
    """sent (taken by the gateway), delivered, undelivered, awaiting_receipt, delivery_rate.

    `stored`: counts by stored status; delivery_rate is delivered / sent, None while sent is 0.
    """
    sent = sum(int(stored.get(status, 0)) for status in ACCEPTED_STATUSES)
    delivered = int(stored.get("delivered", 0))
    return {
        "sent": sent,
        "delivered": delivered,
        "undelivered": int(stored.get("undelivered", 0)),
        "awaiting_receipt": int(stored.get("sent", 0)),
        "delivery_rate": round(delivered / sent, 4) if sent else None,
    }
