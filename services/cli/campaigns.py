"""Campaign commands: create (after a preview and a confirmation), list, actions, stats."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from services.cli.client import Api, CliError
from shared.domain.statuses import MessageStatus

RELATIVE = re.compile(r"\+(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
WINDOW = re.compile(r"(\d{2}:\d{2})-(\d{2}:\d{2})")
STATS_FIELDS = tuple(str(status) for status in MessageStatus)


def parse_when(value: str, now: dt.datetime | None = None) -> str:
    """'now', '+90m' / '+2h' / '+1d', or ISO 8601 with an offset -> ISO 8601 with an offset."""
    now = now or dt.datetime.now(dt.UTC)
    if value == "now":
        return now.isoformat()
    if match := RELATIVE.fullmatch(value):
        return (now + dt.timedelta(**{UNITS[match[2]]: int(match[1])})).isoformat()
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: use ISO 8601, 'now' or +N[smhd]") from exc
    if at.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone offset, e.g. +03:00 or Z")
    return at.isoformat()


def parse_window(value: str) -> dict[str, str]:
    """'09:00-21:00' -> {"start": "09:00", "end": "21:00"} (the API checks the clock values)."""
    match = WINDOW.fullmatch(value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r}: use HH:MM-HH:MM, e.g. 09:00-21:00")
    return {"start": match[1], "end": match[2]}


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def campaign_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /campaigns body from the create options; unset options are left out."""
    body: dict[str, Any] = {
        "name": args.name,
        "channel": args.channel,
        "text": args.text,
        "filter": {"tags": args.tags, "operator_codes": args.operator_codes},
        "ends_at": args.ends_at,
    }
    optional = {
        "subject": args.subject,
        "starts_at": args.starts_at,
        "send_window": args.window,
        "rate_limit": args.rate_limit,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def preview_lines(name: str, preview: Mapping[str, Any]) -> list[str]:
    """What the operator reads before confirming."""
    left = preview["left_out"]
    reasons = ", ".join(
        f"{left[key]:,} {label}"
        for key, label in (
            ("no_phone", "no phone"),
            ("no_email", "no e-mail"),
            ("opted_out", "opted out"),
        )
        if left[key]
    )
    forecast = preview["forecast"]
    finishes = dt.datetime.fromisoformat(forecast["finishes_at"]).astimezone(dt.UTC)
    basis = forecast["rate_basis"].replace("_", " ")
    fits = "before ends_at" if forecast["fits_before_end"] else "AFTER ends_at: the rest expires"
    return [
        f"Preview of {name!r}:",
        f"  recipients     {preview['recipients']:,} of {preview['matched']:,} matching clients",
        f"  left out       {left['total']:,}" + (f" ({reasons})" if reasons else ""),
        f"  in window now  {preview['in_window_now']:,}",
        f"  forecast       {forecast['rate_per_s']:g}/s ({basis});"
        f" done around {finishes:%Y-%m-%d %H:%M} UTC,"
        f" in {duration(forecast['duration_s'])}, {fits}",
        *(sms_lines(preview["sms"]) if preview.get("sms") else []),
    ]


def sms_lines(sms: Mapping[str, Any]) -> list[str]:
    """Messages by encoding, segments, then the cost of each route and in total."""
    messages = sms["messages"]
    forced = f" (forced by {sms['forced_ucs2_by']!r})" if sms["forced_ucs2_by"] else ""
    unpriced = [route["route"] for route in sms["routes"] if route["cost"] is None]
    total = (
        sms["cost"] if sms["cost"] is not None else "unknown: no price for " + ", ".join(unpriced)
    )
    return [
        f"  sms            {messages['GSM-7']:,} GSM-7, {messages['UCS-2']:,} UCS-2{forced}",
        f"  segments       {sms['segments']:,} (at most {sms['max_segments']} per message)",
        *(
            f"    {route['route']:<20} {route['messages']:>9,} messages"
            f" {route['segments']:>9,} segments  cost {route['cost'] or 'unknown'}"
            for route in sms["routes"]
        ),
        f"  cost           {total}",
    ]


def duration(seconds: float) -> str:
    """A rough human duration: '45 s', '12 min', '3 h 05 min', '2 d 04 h'."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24:02d} h"


def create(api: Api, args: argparse.Namespace, out: TextIO, ask: Callable[[str], str]) -> int:
    """Preview, confirm unless --yes, create; print the new campaign's id."""
    body = campaign_body(args)
    preview = api.post("/campaigns/preview", body)
    print("\n".join(preview_lines(args.name, preview)), file=out)
    if not args.yes and ask("Create this campaign? [y/N] ").strip().lower() not in ("y", "yes"):
        raise CliError("aborted: nothing was created")
    campaign = api.post("/campaigns", body)
    print(f"campaign {campaign['id']} created ({campaign['status']})", file=out)
    return 0


def list_campaigns(api: Api, args: argparse.Namespace, out: TextIO) -> int:
    page = api.get("/campaigns", status=args.status, channel=args.channel, limit=args.limit)
    print(f"{'ID':>6}  {'STATUS':<9}  {'CHANNEL':<7}  {'STARTS':<16}  {'ENDS':<16}  NAME", file=out)
    for c in page["items"]:
        starts, ends = (short_time(c[key]) for key in ("starts_at", "ends_at"))
        print(
            f"{c['id']:>6}  {c['status']:<9}  {c['channel']:<7}  {starts}  {ends}  {c['name']}",
            file=out,
        )
    if page["next_after"] is not None:
        print(f"(more: --limit or ?after={page['next_after']})", file=out)
    return 0


def short_time(value: str) -> str:
    return f"{dt.datetime.fromisoformat(value).astimezone(dt.UTC):%Y-%m-%d %H:%M}"


def act(api: Api, args: argparse.Namespace, out: TextIO) -> int:
    """pause, resume or cancel."""
    campaign = api.post(f"/campaigns/{args.id}/{args.action}")
    print(f"campaign {campaign['id']}: {campaign['status']}", file=out)
    return 0


def retry_failed(api: Api, args: argparse.Namespace, out: TextIO) -> int:
    result = api.post(f"/campaigns/{args.id}/retry-failed")
    print(f"campaign {args.id}: {result['requeued']:,} failed messages requeued", file=out)
    return 0


def stats(api: Api, args: argparse.Namespace, out: TextIO) -> int:
    figures = api.get(f"/campaigns/{args.id}/stats")
    eta = "unknown" if figures["eta_s"] is None else duration(figures["eta_s"])
    print(f"campaign {figures['campaign_id']}: {figures['status']}", file=out)
    print(
        f"  done      {figures['done']:,} / {figures['total']:,} ({figures['percent_done']:.1f}%)",
        file=out,
    )
    for name in STATS_FIELDS:
        print(f"  {name:<9} {figures[name]:,}", file=out)
    print(f"  rate      {figures['rate_per_s']:,.1f}/s over the last 10 s", file=out)
    print(f"  eta       {eta}", file=out)
    print("\n".join(gateway_lines(figures)), file=out)
    return 0


def gateway_lines(figures: Mapping[str, Any]) -> list[str]:
    """Segments sent, then one row per gateway that took messages of the campaign."""
    lines = [f"  segments  {figures.get('segments_sent', 0):,} sent"]
    gateways = figures.get("by_gateway") or {}
    if gateways:
        lines.append(
            f"  {'GATEWAY':<20} {'SENT':>9} {'DELIVERED':>9} {'UNDELIV.':>9} {'SEGMENTS':>9}"
        )
        lines.extend(
            f"  {name:<20} {row['sent']:>9,} {row['delivered']:>9,}"
            f" {row['undelivered']:>9,} {row['segments']:>9,}"
            for name, row in sorted(gateways.items())
        )
    return lines
