"""What an operator may change on a campaign in each status, and when failed messages may retry.

Pure decisions: no database, no HTTP. Core use cases raise Conflict with what these return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.domain.statuses import ACTIVE_CAMPAIGN_STATUSES, CampaignStatus

# Column -> the API field that sets it.
API_FIELD = {
    "filter_tags": "filter",
    "filter_operator_codes": "filter",
    "window_start": "send_window",
    "window_end": "send_window",
}
# Fields the scheduler re-reads every tick, so they may change while a campaign runs.
LIVE_FIELDS = frozenset({"ends_at", "rate_limit", "send_window"})
RETRYABLE_STATUSES = frozenset(
    {CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.COMPLETED}
)


def changed_fields(current: Mapping[Any, Any], values: Mapping[str, Any]) -> list[str]:
    """API names of the fields whose new value differs from the stored one, sorted."""
    changed = {column for column, value in values.items() if current.get(column) != value}
    return sorted({API_FIELD.get(column, column) for column in changed})


def edit_refusal(
    status: str, changed: list[str], *, has_started: bool, replace: bool = False
) -> tuple[str, dict[str, list[str]]] | None:
    """Why these changes are refused in this status (message, field reasons), or None.

    A campaign paused before its start has no recipients yet, so it changes like a scheduled one.
    """
    if status == CampaignStatus.SCHEDULED or (status == CampaignStatus.PAUSED and not has_started):
        return None
    if status not in ACTIVE_CAMPAIGN_STATUSES:
        return f"a {status} campaign cannot be changed", {}
    if replace:
        return (
            f"a {status} campaign cannot be replaced; PATCH ends_at, rate_limit or send_window",
            {},
        )
    frozen = [name for name in changed if name not in LIVE_FIELDS]
    if not frozen:
        return None
    reason = f"cannot change while the campaign is {status}"
    return (
        f"a {status} campaign only accepts changes to ends_at, rate_limit and send_window;"
        f" refused: {', '.join(frozen)}",
        {name: [reason] for name in frozen},
    )


def retry_refusal(status: str, ends_at: dt.datetime, now: dt.datetime) -> str | None:
    """Why failed messages of this campaign cannot be sent again now, or None when they can."""
    if status not in RETRYABLE_STATUSES:
        if status == CampaignStatus.SCHEDULED:
            return "the campaign has not started: it has no failed messages yet"
        return f"a {status} campaign sends nothing more"
    if ends_at <= now:
        return f"the campaign's end ({ends_at.isoformat()}) has passed"
    return None
