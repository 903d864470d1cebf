"""SMTP replies: 2yz sent, 4yz transient (retried), 5yz permanent with the server's reply."""

from __future__ import annotations

import pytest

from shared.domain.outcomes import PERMANENT, SENT, TRANSIENT, classify_smtp


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (250, SENT),
        (421, TRANSIENT),
        (450, TRANSIENT),
        (451, TRANSIENT),
        (452, TRANSIENT),
        (454, TRANSIENT),
        (500, PERMANENT),
        (550, PERMANENT),
        (552, PERMANENT),
        (553, PERMANENT),
        (554, PERMANENT),
        (-1, TRANSIENT),
        (999, TRANSIENT),
    ],
)
def test_reply_codes_classify(code: int, kind: str) -> None:
    assert classify_smtp(code, b"reply").kind == kind


def test_the_error_carries_the_server_reply() -> None:
    result = classify_smtp(550, b"5.1.1 <ann@example.com>: Recipient address rejected")

    assert result.error == "SMTP 550: 5.1.1 <ann@example.com>: Recipient address rejected"


def test_a_long_reply_is_cut() -> None:
    assert len(classify_smtp(451, "x" * 5000).error or "") < 300
