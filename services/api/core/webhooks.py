"""Webhook use cases: create (with its secret, shown once), read, patch, delete, list; attempts.

A URL is refused unless http(s) with a host that resolves, and, unless private addresses are
allowed, to public addresses only. The deliverer checks again when it connects.
"""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, RowMapping

from services.api.core.clients import Page, fetch_page
from shared.db.queries import webhooks as queries
from shared.domain.webhooks import address_refusal, literal_address, url_refusal
from shared.errors import InvalidInput, NotFound

SECRET_BYTES = 24
Resolve = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """Every address the name resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def url_reason(url: str, allow_private: bool, resolve: Resolve | None = None) -> str | None:
    """Why this URL may not receive webhooks, or None."""
    reason = url_refusal(url)
    if reason is not None:
        return reason
    host = urlsplit(url).hostname or ""
    literal = literal_address(host)
    addresses = [literal] if literal else (resolve or resolve_host)(host)
    if not addresses:
        return f"host {host!r} does not resolve"
    if allow_private:
        return None
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None:
            return f"host {host!r} is refused: {refusal}"
    return None


def checked(values: Mapping[str, Any], allow_private: bool) -> dict[str, Any]:
    """The values with events deduplicated; InvalidInput naming `url` when it is refused."""
    checked_values = dict(values)
    if "url" in values:
        reason = url_reason(values["url"], allow_private)
        if reason is not None:
            raise InvalidInput("the webhook URL is refused", {"url": [reason]})
    if "events" in values:
        checked_values["events"] = list(dict.fromkeys(values["events"]))
    return checked_values


def new_secret() -> str:
    """A Standard Webhooks signing secret: whsec_ and base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def not_found(webhook_id: int) -> NotFound:
    return NotFound(f"webhook {webhook_id} does not exist")


def create_webhook(engine: Engine, values: Mapping[str, Any], allow_private: bool) -> RowMapping:
    """Store a subscription with a new secret; the answer is the only time it is shown."""
    row = {**checked(values, allow_private), "secret": new_secret()}
    with engine.begin() as conn:
        return queries.insert_webhook(conn, row)


def get_webhook(engine: Engine, webhook_id: int) -> RowMapping:
    with engine.connect() as conn:
        row = queries.get_webhook(conn, webhook_id)
    if row is None:
        raise not_found(webhook_id)
    return row


def patch_webhook(
    engine: Engine, webhook_id: int, values: Mapping[str, Any], allow_private: bool
) -> RowMapping:
    """Change the given fields; enabling clears failing_since and the disabled marks."""
    changes = checked(values, allow_private)
    with engine.begin() as conn:
        row = (
            queries.update_webhook(conn, webhook_id, changes)
            if changes
            else queries.get_webhook(conn, webhook_id)
        )
    if row is None:
        raise not_found(webhook_id)
    return row


def delete_webhook(engine: Engine, webhook_id: int) -> None:
    with engine.begin() as conn:
        if not queries.delete_webhook(conn, webhook_id):
            raise not_found(webhook_id)


def list_webhooks(engine: Engine, *, limit: int, after: int | None = None) -> Page:
    with engine.connect() as conn:
        return fetch_page(lambda n: queries.list_webhooks(conn, after, n), limit)


def list_deliveries(
    engine: Engine, webhook_id: int, *, limit: int, before: int | None = None
) -> dict[str, Any]:
    """One page of a subscription's attempts, newest first."""
    with engine.connect() as conn:
        if queries.get_webhook(conn, webhook_id) is None:
            raise not_found(webhook_id)
        rows = queries.list_attempts(conn, webhook_id, before, limit + 1)
    if len(rows) > limit:
        return {"items": rows[:limit], "next_before": rows[limit - 1]["id"]}
    return {"items": rows, "next_before": None}
