"""Notification rules: its address, values that cover its variables, rendered lengths, first send.

Functions return reasons keyed by field (empty when acceptable), like the campaign rules, so a
batch can report every item's problems without raising.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.campaigns import CONTENT_LIMITS, Reasons
from shared.domain.channels import ChannelRules
from shared.domain.segments import count_segments, limit_reason
from shared.domain.templates import render, render_html, variables
from shared.domain.windows import next_opening

DEFAULT_LIFETIME = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Requested:
    """One item of a request: its loaded values, or the reasons it was refused."""

    values: dict[str, Any] | None
    errors: dict[str, Any] | None
    request_hash: str
    idempotency_key: str | None


def request_hash(item: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a request item, its idempotency_key left out."""
    body = {key: value for key, value in item.items() if key != "idempotency_key"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def address_for(
    rules: ChannelRules, to: Mapping[str, Any], client: Mapping[Any, Any] | None
) -> tuple[str | None, dict[str, Any]]:
    """The address to send to: the one given, or the client's; reasons under `to` if none fits."""
    field = rules.address_field
    if "client_id" in to:
        address = client[field] if client is not None else None
        if address:
            return address, {}
        reason = f"client {to['client_id']} has no {field}, which channel {rules.name} needs"
        return None, {"to": {"client_id": [reason]}}
    if field in to:
        return to[field], {}
    given = next(iter(to), "nothing")
    return None, {"to": [f"channel {rules.name} sends to a {field}, not to {given}"]}


def uncovered_reasons(
    contents: Mapping[str, str | None], values: Mapping[str, object], field: str | None = None
) -> Reasons:
    """Variables the contents use that `values` has no value for.

    Reported under `field` when given (a template's variables), else under each content field.
    """
    reasons: Reasons = {}
    for name, template in contents.items():
        if template is None:
            continue
        for variable in sorted(variables(template)):
            if values.get(variable) is None:
                key = field or name
                where = f" ({name})" if field else ""
                reasons.setdefault(key, []).append(f"no value for variable {variable!r}{where}")
    return reasons


def render_contents(
    contents: Mapping[str, str | None], values: Mapping[str, object]
) -> dict[str, str | None]:
    """Render text and subject plainly and html with every value escaped."""
    return {
        name: None
        if template is None
        else (render_html if name == "html" else render)(template, values)
        for name, template in contents.items()
    }


def length_reasons(rendered: Mapping[str, str | None], field: str | None = None) -> Reasons:
    """Rendered contents over the campaign limits; under `field` when given (a template)."""
    reasons: Reasons = {}
    for name, value in rendered.items():
        limit = CONTENT_LIMITS.get(name)
        if value is not None and limit is not None and len(value) > limit:
            where = f"{name} " if field else ""
            reasons.setdefault(field or name, []).append(
                f"{where}is {len(value)} characters once rendered; at most {limit}"
            )
    return reasons


def segment_reasons(text: str, limit: int, field: str | None = None) -> Reasons:
    """An SMS text rendering to more than `limit` segments; under `field` when given."""
    parts = count_segments(text)
    if parts.segments <= limit:
        return {}
    where = "text " if field else ""
    return {field or "text": [where + limit_reason(parts, limit)]}


def first_send(
    now: dt.datetime,
    expires_at: dt.datetime,
    window: tuple[dt.time, dt.time, str] | None,
) -> tuple[dt.datetime | None, Reasons]:
    """not_before: the window's next opening in its zone, now if open (None without a window)."""
    if window is None:
        return None, {}
    start, end, zone = window
    opening = next_opening(now, zone, start, end)
    if opening >= expires_at:
        return None, {
            "send_window": [
                f"opens next at {opening.isoformat()}, not before expires_at "
                f"{expires_at.isoformat()}"
            ]
        }
    return opening, {}


def expiry_reasons(now: dt.datetime, expires_at: dt.datetime) -> Reasons:
    if expires_at <= now:
        return {"expires_at": ["must be in the future"]}
    return {}
