"""Delivery figures: sent counts what the gateway took, the rate is delivered over that."""

from __future__ import annotations

from shared.domain.delivery import delivery_figures


def test_sent_counts_every_message_the_gateway_took() -> None:
    figures = delivery_figures({"sent": 10, "delivered": 85, "undelivered": 5, "failed": 7})

    assert figures == {
        "sent": 100,
        "delivered": 85,
        "undelivered": 5,
        "awaiting_receipt": 10,
        "delivery_rate": 0.85,
    }


def test_without_receipts_sent_is_unchanged_and_nothing_is_delivered_yet() -> None:
    figures = delivery_figures({"sent": 40, "pending": 3})

    assert (figures["sent"], figures["awaiting_receipt"], figures["delivery_rate"]) == (40, 40, 0.0)


def test_the_rate_is_unknown_until_something_was_sent() -> None:
    assert delivery_figures({"pending": 5, "failed": 2})["delivery_rate"] is None
    assert delivery_figures({})["sent"] == 0


def test_the_rate_is_rounded_to_four_places() -> None:
    assert delivery_figures({"delivered": 2, "undelivered": 1})["delivery_rate"] == 0.6667
