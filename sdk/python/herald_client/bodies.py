"""Request bodies: recipients from shorthand, one notification's JSON, batches of 1,000.

Pure functions: no network, so an application can test what it would send.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

MAX_BATCH = 1000

Recipient = str | int | Mapping[str, Any]


def recipient(to: Recipient) -> dict[str, Any]:
    """{"email"} for an address with @, {"phone"} for "+..." or digits, {"client_id"} for an int."""
    if isinstance(to, bool):
        raise ValueError(f"not a recipient: {to!r}")
    if isinstance(to, int):
        return {"client_id": to}
    if isinstance(to, Mapping):
        return dict(to)
    if isinstance(to, str):
        address = to.strip()
        if "@" in address:
            return {"email": address}
        if address[:1] == "+" or address[:1].isdigit():
            return {"phone": address}
    raise ValueError(f"not a phone, an e-mail address or a client id: {to!r}")


def notification(
    channel: str,
    to: Recipient,
    text: str | None = None,
    *,
    subject: str | None = None,
    html: str | None = None,
    template: str | None = None,
    variables: Mapping[str, Any] | None = None,
    expires_at: dt.datetime | str | None = None,
    send_window: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One notification as the API reads it; fields left None are left out."""
    body: dict[str, Any] = {
        "channel": channel,
        "to": recipient(to),
        "text": text,
        "subject": subject,
        "html": html,
        "template": template,
        "variables": dict(variables) if variables is not None else None,
        "expires_at": expires_at.isoformat() if isinstance(expires_at, dt.datetime) else expires_at,
        "send_window": dict(send_window) if send_window is not None else None,
    }
    return {name: value for name, value in body.items() if value is not None}


def new_key() -> str:
    """A fresh idempotency key."""
    return str(uuid.uuid4())


def keyed(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the items, "to" read as shorthand, each with an idempotency_key (fresh if none).

    The keys are fixed here, before anything is sent, so that every retry carries the same ones.
    """
    prepared = []
    for item in items:
        copy = dict(item)
        if "to" in copy:
            copy["to"] = recipient(copy["to"])
        if not copy.get("idempotency_key"):
            copy["idempotency_key"] = new_key()
        prepared.append(copy)
    return prepared


def batches(
    items: Sequence[dict[str, Any]], size: int = MAX_BATCH
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive slices of at most size items, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
