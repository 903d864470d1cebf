"""What a gateway's delivery report or a mail provider's bounce means for Herald's statuses.

A gateway reports delivered, undelivered, expired or rejected; Herald keeps two outcomes,
delivered and undelivered, and keeps the gateway's own word in the error. An e-mail bounce
that is permanent, or a complaint, makes the message undelivered and opts the client out of
e-mail; a transient bounce changes nothing (the provider still tries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GATEWAY_STATUSES = ("delivered", "undelivered", "expired", "rejected")
EMAIL_TYPES = ("bounce", "complaint")
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
MAX_RECEIPTS = 1000  # per request, and so per AMQP message


@dataclass(frozen=True, slots=True)
class Receipt:
    """One receipt as applied: `at` in epoch seconds; `opt_out` opts the client out of e-mail."""

    id: int
    status: str  # delivered | undelivered
    error: str | None
    at: float
    opt_out: bool = False


def from_gateway(message_id: int, status: str, error: str | None, at: float) -> Receipt:
    """A gateway's report; expired and rejected are undelivered, their word kept in the error."""
    if status not in GATEWAY_STATUSES:
        raise ValueError(f"unknown receipt status {status!r}")
    if status == DELIVERED:
        return Receipt(message_id, DELIVERED, None, at)
    word = status if status != UNDELIVERED else None
    parts = [part for part in (word, error) if part]
    return Receipt(message_id, UNDELIVERED, ": ".join(parts) or None, at)


def from_email(
    message_id: int, kind: str, permanent: bool, error: str | None, at: float
) -> Receipt | None:
    """A bounce or complaint; None for a transient bounce, which changes nothing."""
    if kind not in EMAIL_TYPES:
        raise ValueError(f"unknown e-mail receipt type {kind!r}")
    if kind == "bounce" and not permanent:
        return None
    word = "complaint" if kind == "complaint" else "permanent bounce"
    return Receipt(message_id, UNDELIVERED, f"{word}: {error}" if error else word, at, True)


# Herald's own Message-ID header (shared/domain/emails.py): <herald-<id>@<domain>>.
MESSAGE_ID_HEADER = re.compile(r"^\s*<?herald-(\d{1,18})@[^>\s]+>?\s*$")


def id_from_reference(reference: int | str) -> int | None:
    """The message id a bounce names: Herald's id, or its Message-ID header; None if neither."""
    if isinstance(reference, bool):
        return None
    if isinstance(reference, int):
        return reference if reference > 0 else None
    text = reference.strip()
    if text.isdigit() and len(text) <= 18:
        return int(text) or None
    found = MESSAGE_ID_HEADER.match(text)
    return int(found.group(1)) if found else None
