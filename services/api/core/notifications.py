"""Notification use cases: accept one or many (one transaction), read, list, cancel.

Accepting is set-based: every client named by a request is read in one statement, every
template in another, and every valid item is stored by one accept_notifications call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, RowMapping

from services.api.core.clients import Page, fetch_page
from services.api.core.sms_forecast import SMS_CHANNEL
from services.api.core.templates import CONTENT_COLUMNS, template_refusal
from shared.db.queries import notifications as queries
from shared.db.queries.clients import clients_by_id
from shared.db.queries.notifications import Accepted, NewNotification
from shared.db.queries.statuses import accept_notifications, cancel_notification
from shared.db.queries.templates import templates_by_name
from shared.domain.campaigns import Reasons, parse_clock
from shared.domain.channels import rules_for
from shared.domain.notifications import (
    DEFAULT_LIFETIME,
    Requested,
    address_for,
    expiry_reasons,
    first_send,
    length_reasons,
    render_contents,
    segment_reasons,
    uncovered_reasons,
)
from shared.domain.templates import client_values
from shared.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The 202 body: {id, status}, or {errors}, or {items: [...]} for an array; and whether
    it replays an earlier request, or reuses a key with another body."""

    body: dict[str, Any]
    is_replay: bool = False
    is_conflict: bool = False


def accept(
    engine: Engine,
    items: Sequence[Requested],
    *,
    is_batch: bool,
    max_segments: int,
) -> Acceptance:
    """Store the valid items in one transaction; one result per item, in order.

    Alone, an invalid item is InvalidInput and a key reused with another body a Conflict.
    An SMS whose text renders to more than `max_segments` segments is invalid.
    """
    now = dt.datetime.now(dt.UTC)
    valid = [item.values for item in items if item.values is not None]
    with engine.begin() as conn:
        clients = clients_by_id(
            conn, [v["to"]["client_id"] for v in valid if "client_id" in v["to"]]
        )
        templates = templates_by_name(conn, [v["template"] for v in valid if v.get("template")])
        prepared = [prepare(item, clients, templates, now, max_segments) for item in items]
        rows = [p for p in prepared if isinstance(p, NewNotification)]
        stored = iter(accept_notifications(conn, rows))
        results = [
            outcome(next(stored)) if isinstance(p, NewNotification) else Acceptance({"errors": p})
            for p in prepared
        ]
    if is_batch:
        return Acceptance({"items": [result.body for result in results]})
    (result,) = results
    if result.is_conflict:
        raise Conflict(result.body["errors"]["idempotency_key"][0])
    if "errors" in result.body:
        raise InvalidInput("the notification is not valid", result.body["errors"])
    return result


def outcome(accepted: Accepted) -> Acceptance:
    """One stored item's result: new, a replay of an earlier one, or a key conflict."""
    if accepted.is_conflict:
        reason = (
            f"this key was used within 24 hours for notification {accepted.id} "
            "with another body; use a new key for a new notification"
        )
        return Acceptance({"errors": {"idempotency_key": [reason]}}, is_conflict=True)
    return Acceptance({"id": accepted.id, "status": accepted.status}, not accepted.is_new)


def prepare(
    item: Requested,
    clients: Mapping[int, RowMapping],
    templates: Mapping[str, RowMapping],
    now: dt.datetime,
    max_segments: int,
) -> NewNotification | Reasons | dict[str, Any]:
    """The item addressed and rendered, or every reason it cannot be."""
    if item.values is None:
        return item.errors or {}
    values = item.values
    rules = rules_for(values["channel"])
    client_id = values["to"].get("client_id")
    client = clients.get(client_id) if client_id is not None else None
    reasons: dict[str, Any] = {}
    address = None
    if client_id is not None and client is None:
        reasons["to"] = {"client_id": [f"no client with id {client_id}"]}
    else:
        address, found = address_for(rules, values["to"], client)
        reasons.update(found)
    contents, template_reasons = contents_of(values, templates)
    reasons.update(template_reasons)
    rendered: dict[str, str | None] = {}
    if contents:
        known = with_client(values["variables"], client)
        field = "variables" if values.get("template") else None
        reasons.update(uncovered_reasons(contents, known, field))
        rendered = render_contents(contents, known)
        reasons.update(length_reasons(rendered, "template" if field else None))
        if rules.name == SMS_CHANNEL and rendered.get("text") and "text" not in reasons:
            reasons.update(
                segment_reasons(rendered["text"] or "", max_segments, "template" if field else None)
            )
    expires_at = values.get("expires_at", now + DEFAULT_LIFETIME)
    reasons.update(expiry_reasons(now, expires_at))
    not_before, window_reasons = first_send(now, expires_at, window_of(values, client))
    if "expires_at" not in reasons:
        reasons.update(window_reasons)
    if reasons:
        return reasons
    return NewNotification(
        channel=rules.name,
        address=address or "",
        text=rendered["text"] or "",
        expires_at=expires_at,
        client_id=client_id,
        subject=rendered.get("subject"),
        html=rendered.get("html"),
        template=values.get("template"),
        not_before=not_before,
        idempotency_key=item.idempotency_key,
        request_hash=item.request_hash if item.idempotency_key else None,
    )


def contents_of(
    values: Mapping[str, Any], templates: Mapping[str, RowMapping]
) -> tuple[dict[str, str | None], Reasons]:
    """Text, subject and html: the request's, or its template's (a subject given wins)."""
    name = values.get("template")
    if name is None:
        return {column: values.get(column) for column in CONTENT_COLUMNS}, {}
    template = templates.get(name)
    refusal = template_refusal(template, name, values["channel"])
    if refusal or template is None:
        return {}, refusal
    contents = {column: template[column] for column in CONTENT_COLUMNS}
    if values.get("subject"):
        contents["subject"] = values["subject"]
    return contents, {}


def with_client(variables: Mapping[str, object], client: RowMapping | None) -> dict[str, object]:
    """Template values: the client's attributes and fields, overridden by the variables."""
    if client is None:
        return dict(variables)
    known = client_values(
        client["attributes"],
        client["phone"],
        client["email"],
        client["operator_code"],
        client["timezone"],
    )
    return {**known, **variables}


def window_of(
    values: Mapping[str, Any], client: RowMapping | None
) -> tuple[dt.time, dt.time, str] | None:
    window = values.get("send_window")
    if window is None:
        return None
    zone = window.get("timezone") or (client["timezone"] if client is not None else None)
    return parse_clock(window["start"]), parse_clock(window["end"]), zone or "UTC"


def not_found(notification_id: int) -> NotFound:
    return NotFound(f"notification {notification_id} does not exist")


def get_notification(engine: Engine, notification_id: int) -> RowMapping:
    with engine.connect() as conn:
        row = queries.get_notification(conn, notification_id)
    if row is None:
        raise not_found(notification_id)
    return row


def list_notifications(
    engine: Engine, *, limit: int, after: int | None = None, status: str | None = None
) -> Page:
    """One page of notifications by id, optionally by status."""
    with engine.connect() as conn:
        return fetch_page(lambda n: queries.list_notifications(conn, status, after, n), limit)


def cancel(engine: Engine, notification_id: int) -> RowMapping:
    """Cancel a queued notification no sender has yet; Conflict once released or final."""
    with engine.begin() as conn:
        is_cancelled = cancel_notification(conn, notification_id)
        row = queries.get_notification(conn, notification_id)
    if row is None:
        raise not_found(notification_id)
    if not is_cancelled:
        state = "released to a sender" if row["status"] == "queued" else row["status"]
        raise Conflict(f"notification {notification_id} is {state}; it can no longer be cancelled")
    return row
