"""Envelopes carry every field of what they hold, and read back as they were written."""

from __future__ import annotations

import json
from dataclasses import asdict

from shared.domain.receipts import Receipt
from shared.messaging.envelopes import (
    DeliveryBatch,
    DeliveryItem,
    Outcome,
    OutcomeBatch,
    ReceiptBatch,
)

ITEM = DeliveryItem(7, "+79160000000", "Привет", 2, 4e9, "Subject", "<p>Hi</p>", 11, "916", 3.9e9)


def test_a_delivery_batch_holds_every_item_field_and_reads_back_equal() -> None:
    batch = DeliveryBatch(3, "http", (ITEM, DeliveryItem(8, "+1", "x", 1, 1.5)))

    body = json.loads(batch.encode())

    assert body["items"][0] == asdict(ITEM)
    assert DeliveryBatch.decode(batch.encode()) == batch


def test_an_outcome_batch_holds_gateway_and_segments_and_reads_back_equal() -> None:
    batch = OutcomeBatch(3, (Outcome(7, "sent", 1, 1.5, None, "alpha", 2),))

    assert json.loads(batch.encode())["outcomes"] == [asdict(batch.outcomes[0])]
    assert OutcomeBatch.decode(batch.encode()) == batch


def test_a_receipt_batch_reads_back_equal() -> None:
    batch = ReceiptBatch((Receipt(7, "undelivered", "absent", 1.5, True),))

    assert ReceiptBatch.decode(batch.encode()) == batch
