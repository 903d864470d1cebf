"""Campaign rules: time range, send window, channel needs, and which statuses allow deletion.

Functions return reasons keyed by field (empty when acceptable) so every caller can report
all problems at once, in its own error type.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from shared.domain.channels import UnknownChannel, names, rules_for
from shared.domain.statuses import ACTIVE_CAMPAIGN_STATUSES
from shared.domain.templates import CLIENT_FIELDS, TemplateError, variables

Reasons = dict[str, list[str]]

CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
TEMPLATE_FIELDS = ("text", "subject", "html")
# Longest text, subject (RFC 5322's line) and HTML of any message, as given or rendered.
CONTENT_LIMITS = {"text": 5000, "subject": 998, "html": 100_000}


def parse_clock(value: str) -> dt.time:
    """Parse 'HH:MM' (24-hour) into a time; raise ValueError otherwise."""
    match = CLOCK.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return dt.time(int(match[1]), int(match[2]))


def time_range_reasons(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> Reasons:
    """ends_at must come after starts_at; both must carry a time zone."""
    reasons: Reasons = {}
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.utcoffset() is None:
            reasons[name] = ["must include a time zone offset"]
    if reasons or starts_at is None or ends_at is None:
        return reasons
    if ends_at <= starts_at:
        reasons["ends_at"] = ["must be after starts_at"]
    return reasons


def window_reasons(start: dt.time | None, end: dt.time | None) -> Reasons:
    """A send window needs both ends and a non-empty span; it may wrap midnight."""
    if start is None and end is None:
        return {}
    if start is None or end is None:
        return {"send_window": ["needs both start and end"]}
    if start == end:
        return {"send_window": ["start and end must differ"]}
    return {}


def channel_reasons(channel: str | None, subject: str | None, html: str | None = None) -> Reasons:
    """What the channel asks of a campaign: a subject (e-mail), whether HTML is allowed."""
    if channel is None:
        return {}
    try:
        rules = rules_for(channel)
    except UnknownChannel as exc:
        return {"channel": [str(exc)]}
    reasons: Reasons = {}
    if rules.needs_subject and not subject:
        reasons["subject"] = [f"is required when channel is {channel}"]
    if html and not rules.allows_html:
        with_html = [name for name in names() if rules_for(name).allows_html]
        reasons["html"] = [f"is only for channel {' or '.join(with_html)}"]
    return reasons


def template_reasons(fields: Mapping[str, str | None]) -> tuple[Reasons, dict[str, set[str]]]:
    """Check template syntax per field; also return each field's variables beyond client fields."""
    reasons: Reasons = {}
    extra: dict[str, set[str]] = {}
    for name, template in fields.items():
        if template is None:
            continue
        try:
            extra[name] = variables(template) - CLIENT_FIELDS
        except TemplateError as exc:
            reasons[name] = [str(exc)]
    return reasons, extra


def campaign_reasons(values: Mapping[str, Any]) -> Reasons:
    """Cross-field checks on a whole campaign (column names: window_start, window_end)."""
    reasons: Reasons = {}
    reasons.update(time_range_reasons(values.get("starts_at"), values.get("ends_at")))
    reasons.update(window_reasons(values.get("window_start"), values.get("window_end")))
    reasons.update(
        channel_reasons(values.get("channel"), values.get("subject"), values.get("html"))
    )
    return reasons


def delete_refusal(status: str) -> str | None:
    """Why a campaign in this status may not be deleted, or None when it may."""
    if status in ACTIVE_CAMPAIGN_STATUSES:
        return f"a {status} campaign cannot be deleted; cancel it first"
    return None
