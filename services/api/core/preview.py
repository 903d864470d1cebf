"""Preview a campaign without storing it: who it would reach, who is in window now, when it ends.

One grouped query counts the audience per time zone; the window test and the forecast then
run over those groups (a few hundred at most), never over clients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from services.api.core import forecast
from services.api.core.campaigns import audience_sms, check_campaign, check_segments, with_template
from services.api.core.sms_forecast import SMS_CHANNEL
from shared.config import Settings
from shared.db.queries.stats import ZoneAudience, audience_by_zone, sample_recipient
from shared.domain.channels import rules_for
from shared.domain.templates import client_values, render, render_html
from shared.domain.windows import is_open

LEFT_OUT_REASONS = ("no_phone", "no_email", "opted_out")


def preview_campaign(
    engine: Engine, settings: Settings, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Counts and a finish forecast for a campaign body (column names), validated as on create.

    For SMS, also the segments the text renders to over the whole audience, and their cost.
    """
    now = dt.datetime.now(dt.UTC)
    values = {"starts_at": now, **values}
    sms = None
    with engine.connect() as conn:
        values = with_template(conn, values, values["channel"])
        check_campaign(conn, values)
        if values["channel"] == SMS_CHANNEL:
            routing = settings.routing
            sms = audience_sms(
                conn, values, settings.sms_max_segments, routing.route_for, routing.longest_prefix
            )
            check_segments(sms)
        zones = audience_by_zone(conn, values)
        sample = sample_recipient(conn, values)
    window = window_of(values)
    limits = settings.channel_limits.get(values["channel"])
    ceiling = limits.per_second if limits else None
    estimate = forecast.forecast(
        [(zone.timezone, zone.recipients) for zone in zones],
        now=now,
        starts_at=values["starts_at"],
        ends_at=values["ends_at"],
        window=window,
        rate=forecast.sending_rate(values.get("rate_limit"), ceiling),
    )
    left_out = {reason: sum(getattr(z, reason) for z in zones) for reason in LEFT_OUT_REASONS}
    return {
        "matched": sum(zone.matched for zone in zones),
        "recipients": sum(zone.recipients for zone in zones),
        "in_window_now": sum(z.recipients for z in zones if in_window(z, window, now)),
        "left_out": {"total": sum(left_out.values()), **left_out},
        "forecast": estimate,
        "sample": rendered_for(values, sample) if sample is not None else None,
        **({"sms": sms.as_json()} if sms is not None else {}),
    }


def window_of(values: Mapping[str, Any]) -> forecast.Window | None:
    start, end = values.get("window_start"), values.get("window_end")
    return (start, end) if start is not None and end is not None else None


def in_window(zone: ZoneAudience, window: forecast.Window | None, now: dt.datetime) -> bool:
    """Whether it is within the send window now in this zone (always, without a window)."""
    if window is None:
        return True
    return is_open(window[0], window[1], now.astimezone(ZoneInfo(zone.timezone)).time())


def rendered_for(values: Mapping[str, Any], client: Mapping[Any, Any]) -> dict[str, Any]:
    """The campaign's contents as this client would get them."""
    fields = client_values(
        client["attributes"],
        client["phone"],
        client["email"],
        client["operator_code"],
        client["timezone"],
    )
    html = values.get("html")
    subject = values.get("subject")
    return {
        "client_id": client["id"],
        "address": client[rules_for(values["channel"]).address_field],
        "text": render(values["text"], fields),
        "subject": render(subject, fields) if subject else None,
        "html": render_html(html, fields) if html else None,
    }
