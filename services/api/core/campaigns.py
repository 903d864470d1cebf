"""Campaign use cases: create, replace/patch, delete, pause/resume/cancel, list.

Each runs in one transaction that writes the campaign and its campaign.* outbox event together,
so the scheduler hears about every accepted change, even if RabbitMQ is down at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping

from services.api.core import policy, templates
from services.api.core.clients import Page, fetch_page
from services.api.core.sms_forecast import (
    SMS_CHANNEL,
    RouteFor,
    SmsForecast,
    forecast,
)
from services.api.core.stats import progress_summary
from shared.db.queries import campaigns as queries
from shared.db.queries import statuses
from shared.db.queries.audience_texts import audience_texts
from shared.db.queries.campaigns import PROGRESS_COUNTS
from shared.db.queries.clients import attribute_key_exists
from shared.domain.campaigns import (
    TEMPLATE_FIELDS,
    Reasons,
    campaign_reasons,
    delete_refusal,
    template_reasons,
)
from shared.domain.routes import Route
from shared.domain.statuses import CampaignStatus, IllegalTransition, transition
from shared.domain.templates import variables
from shared.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from shared.messaging.topology import CAMPAIGNS_EXCHANGE
from shared.outbox import record

ACTION_EVENTS = {
    "pause": "campaign.paused",
    "resume": "campaign.resumed",
    "cancel": "campaign.cancelled",
}

UNROUTED = Route("default", ())
# The fields (API names) a campaign's SMS texts depend on: what is rendered, and for whom.
SEGMENT_INPUTS = frozenset({"text", "template", "channel", "filter"})

# What a replacement (PUT) resets when the body leaves an optional field out.
REPLACE_DEFAULTS: dict[str, Any] = {
    "subject": None,
    "html": None,
    "filter_tags": [],
    "filter_operator_codes": [],
    "window_start": None,
    "window_end": None,
    "rate_limit": None,
    "template": None,
}


def publish(conn: Connection, routing_key: str, campaign_id: int, request_id: str) -> None:
    record(
        conn,
        CAMPAIGNS_EXCHANGE,
        routing_key,
        {"campaign_id": campaign_id},
        {"x-correlation-id": request_id},
    )


def check_campaign(
    conn: Connection,
    values: Mapping[str, Any],
    *,
    new_end: bool = True,
    templates: tuple[str, ...] = TEMPLATE_FIELDS,
) -> None:
    """Raise InvalidInput with every reason the whole campaign is not acceptable.

    `new_end`: ends_at is being set, so it must lie ahead; `templates`: the template fields
    to check against the clients' attributes (those being set).
    """
    reasons = campaign_reasons(values)
    if new_end and "ends_at" not in reasons and values["ends_at"] <= dt.datetime.now(dt.UTC):
        reasons["ends_at"] = ["must be in the future"]
    reasons.update(unknown_variable_reasons(conn, values, templates))
    if values.get("template") is not None:
        reasons = blame_template(reasons)
    if reasons:
        raise InvalidInput("the campaign is not valid", reasons)


def blame_template(reasons: Reasons) -> Reasons:
    """Reasons about contents copied from a template, told as the template's."""
    blamed: Reasons = {}
    for field, messages in reasons.items():
        if field in TEMPLATE_FIELDS:
            blamed.setdefault("template", []).extend(f"{field}: {m}" for m in messages)
        else:
            blamed[field] = messages
    return blamed


def with_template(
    conn: Connection, values: Mapping[str, Any], channel: str | None
) -> Mapping[str, Any]:
    """Copy the named template's contents in; a text given instead forgets any template."""
    if values.get("template") is not None and channel is not None:
        return templates.copy_template(conn, values, channel)
    if "text" in values:
        return {**values, "template": None}
    return values


def unknown_variable_reasons(
    conn: Connection, values: Mapping[str, Any], templates: tuple[str, ...] = TEMPLATE_FIELDS
) -> Reasons:
    """Variables must be client fields or an attribute key that some client has."""
    reasons, extra = template_reasons({name: values.get(name) for name in templates})
    known: dict[str, bool] = {}
    for field, names in extra.items():
        for name in sorted(names):
            if name not in known:
                known[name] = attribute_key_exists(conn, name)
            if not known[name]:
                reasons.setdefault(field, []).append(
                    f"unknown variable {name!r}: not a client field nor any client's attribute"
                )
    return reasons


def audience_sms(
    conn: Connection,
    values: Mapping[str, Any],
    max_segments: int,
    route_for: RouteFor | None = None,
    longest_prefix: int = 0,
) -> SmsForecast:
    """Segments of the campaign's text over its whole audience, by encoding and route.

    One grouped statement: recipients are grouped by the values the text uses and by their
    route key, and the text is rendered once per group. Without `route_for` every
    recipient takes one unpriced route (enough to enforce the limit).
    """
    groups = audience_texts(conn, values, variables(values["text"]), longest_prefix)
    return forecast(values["text"], groups, route_for or (lambda *_: UNROUTED), max_segments)


def check_segments(sms: SmsForecast) -> None:
    """InvalidInput on `text` when some recipient's text would take too many segments."""
    over = sms.over_limit
    if over is not None:
        raise InvalidInput("the campaign is not valid", {"text": [over.reason(sms.max_segments)]})


def create_campaign(
    engine: Engine,
    values: Mapping[str, Any],
    request_id: str,
    *,
    max_segments: int,
) -> RowMapping:
    """Store a scheduled campaign, its zeroed progress and a campaign.created event.

    An SMS campaign is refused when any recipient's text renders to more than
    `max_segments` segments.
    """
    values = {"starts_at": dt.datetime.now(dt.UTC), **values}
    with engine.begin() as conn:
        values = with_template(conn, values, values["channel"])
        check_campaign(conn, values)
        if values["channel"] == SMS_CHANNEL:
            check_segments(audience_sms(conn, values, max_segments))
        # Kept so the scheduler stamps every delivery batch of the campaign with it.
        row = queries.insert_campaign(conn, {**values, "correlation_id": request_id})
        publish(conn, "campaign.created", row["id"], request_id)
    return row


def get_campaign(engine: Engine, campaign_id: int) -> RowMapping:
    with engine.connect() as conn:
        return existing(conn, campaign_id)


def existing(conn: Connection, campaign_id: int, *, for_update: bool = False) -> RowMapping:
    row = queries.get_campaign(conn, campaign_id, for_update=for_update)
    if row is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return row


def update_campaign(
    engine: Engine,
    campaign_id: int,
    values: Mapping[str, Any],
    request_id: str,
    *,
    replace: bool = False,
    max_segments: int,
) -> RowMapping:
    """Change a campaign and record campaign.updated.

    Scheduled: anything (all fields when `replace`). Running or paused: ends_at, rate_limit
    and send_window only, which the scheduler applies on its next tick; recipients are fixed.
    A change of text or audience is held to `max_segments` as on create.
    """
    if replace:
        values = {**REPLACE_DEFAULTS, "starts_at": dt.datetime.now(dt.UTC), **values}
    with engine.begin() as conn:
        current = existing(conn, campaign_id, for_update=True)
        values = with_template(conn, values, values.get("channel", current["channel"]))
        changed = policy.changed_fields(current, values)
        refusal = policy.edit_refusal(
            current["status"],
            changed,
            has_started=current["started_at"] is not None,
            replace=replace,
        )
        if refusal:
            raise Conflict(*refusal)
        check_campaign(
            conn,
            {**current, **values},
            new_end="ends_at" in changed,
            templates=tuple(name for name in TEMPLATE_FIELDS if name in changed),
        )
        merged = {**current, **values}
        if merged["channel"] == SMS_CHANNEL and SEGMENT_INPUTS.intersection(changed):
            check_segments(audience_sms(conn, merged, max_segments))
        row = queries.update_campaign(conn, campaign_id, values)
        publish(conn, "campaign.updated", campaign_id, request_id)
    return row


def retry_failed(engine: Engine, campaign_id: int, request_id: str) -> int:
    """Put the campaign's failed messages back to pending, in one statement; how many.

    Attempts start again from zero; last_error stays until the next outcome replaces it.
    A completed campaign runs again; campaign.updated wakes the scheduler.
    """
    with engine.begin() as conn:
        current = existing(conn, campaign_id, for_update=True)
        refusal = policy.retry_refusal(
            current["status"], current["ends_at"], dt.datetime.now(dt.UTC)
        )
        if refusal:
            raise Conflict(f"cannot retry failed messages: {refusal}")
        requeued = statuses.requeue_failed(conn, campaign_id)
        if requeued:
            statuses.reopen(conn, campaign_id)
            publish(conn, "campaign.updated", campaign_id, request_id)
    return requeued


def delete_campaign(engine: Engine, campaign_id: int) -> None:
    """Delete a campaign unless it is running or paused."""
    with engine.begin() as conn:
        current = existing(conn, campaign_id, for_update=True)
        refusal = delete_refusal(current["status"])
        if refusal:
            raise Conflict(refusal)
        queries.delete_campaign(conn, campaign_id)


def apply_action(engine: Engine, campaign_id: int, action: str, request_id: str) -> RowMapping:
    """Pause, resume or cancel; asking for the status it already has changes nothing."""
    with engine.begin() as conn:
        current = existing(conn, campaign_id, for_update=True)
        try:
            target = transition(
                CampaignStatus(current["status"]), action, current["started_at"] is not None
            )
        except IllegalTransition as exc:
            raise InvalidTransition(str(exc)) from exc
        if target == current["status"]:
            return current
        row = statuses.set_action_status(conn, campaign_id, target)
        publish(conn, ACTION_EVENTS[action], campaign_id, request_id)
    return row


def list_campaigns(
    engine: Engine,
    *,
    limit: int,
    after: int | None = None,
    status: str | None = None,
    channel: str | None = None,
    order: str = "id",
) -> Page:
    """One page of campaigns by id (or newest first), optionally by status and channel.

    Each carries its progress: counters, done and percent_done, read with the page.
    """
    with engine.connect() as conn:
        page = fetch_page(
            lambda n: queries.list_campaigns(
                conn,
                limit=n,
                after=after,
                status=status,
                channel=channel,
                newest_first=order == "-id",
            ),
            limit,
        )
    return Page([with_progress(row) for row in page.items], page.next_after)


def with_progress(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A listed campaign's columns, its progress_* counters gathered under progress."""
    prefix = "progress_"
    campaign = {key: value for key, value in row.items() if not key.startswith(prefix)}
    counts = {name: row[prefix + name] for name in PROGRESS_COUNTS}
    return {**campaign, "progress": progress_summary(counts, row["status"])}


def list_messages(
    engine: Engine,
    campaign_id: int,
    *,
    limit: int,
    after: int | None = None,
    status: str | None = None,
) -> Page:
    """One page of a campaign's messages by id."""
    with engine.connect() as conn:
        existing(conn, campaign_id)
        return fetch_page(
            lambda n: queries.list_messages(conn, campaign_id, limit=n, after=after, status=status),
            limit,
        )
