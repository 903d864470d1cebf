"""What a gateway's report or a mail provider's bounce means, and where it names a message."""

from __future__ import annotations

import pytest

from shared.domain.receipts import Receipt, from_email, from_gateway, id_from_reference
from shared.messaging.envelopes import DecodeError, ReceiptBatch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("delivered", "ignored when delivered", ("delivered", None)),
        ("undelivered", "absent subscriber", ("undelivered", "absent subscriber")),
        ("undelivered", None, ("undelivered", None)),
        ("expired", None, ("undelivered", "expired")),
        ("rejected", "E042", ("undelivered", "rejected: E042")),
    ],
)
def test_gateway_statuses_become_delivered_or_undelivered_keeping_their_word(
    status: str, error: str | None, expected: tuple[str, str | None]
):
    receipt = from_gateway(7, status, error, 1.0)
    assert (receipt.status, receipt.error) == expected
    assert not receipt.opt_out


def test_an_unknown_gateway_status_is_refused():
    with pytest.raises(ValueError, match="lost"):
        from_gateway(7, "lost", None, 1.0)


def test_a_permanent_bounce_or_a_complaint_is_undelivered_and_opts_out():
    bounce = from_email(7, "bounce", True, "550 unknown user", 1.0)
    complaint = from_email(8, "complaint", False, None, 1.0)
    assert bounce == Receipt(7, "undelivered", "permanent bounce: 550 unknown user", 1.0, True)
    assert complaint == Receipt(8, "undelivered", "complaint", 1.0, True)


def test_a_transient_bounce_changes_nothing():
    assert from_email(7, "bounce", False, "mailbox full", 1.0) is None


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (42, 42),
        ("42", 42),
        ("<herald-42@example.org>", 42),
        ("herald-42@mail.example.org", 42),
        (" <herald-42@example.org> ", 42),
        (0, None),
        (-3, None),
        (True, None),
        ("<42@example.org>", None),
        ("<herald-x@example.org>", None),
        ("", None),
        ("9" * 19, None),
    ],
)
def test_a_bounce_names_its_message_by_id_or_message_id_header(
    reference: int | str, expected: int | None
):
    assert id_from_reference(reference) == expected


def test_a_receipt_batch_survives_the_wire_and_a_bad_one_is_poison():
    batch = ReceiptBatch(
        (Receipt(1, "delivered", None, 2.5), Receipt(2, "undelivered", "x", 3.0, True))
    )
    assert ReceiptBatch.decode(batch.encode()) == batch
    for body in (b"[]", b'{"receipts": [{"id": 1, "status": "sent", "at": 1}]}', b"nope"):
        with pytest.raises(DecodeError):
            ReceiptBatch.decode(body)
