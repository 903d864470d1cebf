"""Webhook rules: event types, the retry schedule, which URLs and addresses are refused, and
how an answer is classified. Pure: the API and the deliverer apply them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from urllib.parse import urlsplit

EVENT_TYPES = (
    "message.sent",
    "message.failed",
    "message.delivered",
    "message.undelivered",
    "notification.sent",
    "notification.failed",
    "notification.delivered",
    "notification.undelivered",
    "campaign.started",
    "campaign.completed",
    "campaign.cancelled",
    "campaign.expired",
)

# Growing delays after each failed attempt, then every 3 hours until the event is 24 h old.
RETRY_DELAYS_S = (5, 30, 120, 600, 1800, 3600, 7200)
LATE_RETRY_DELAY_S = 10800
GIVE_UP_AFTER = dt.timedelta(hours=24)
DISABLE_AFTER = dt.timedelta(hours=24)

# Cloud metadata services; some sit outside the private ranges (Alibaba's 100.100.100.200
# is in CGNAT space, AWS's IPv6 one in the unique-local range), so they are named as well.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def retry_delay_s(attempts: int) -> int:
    """Seconds to wait after the attempts made so far (1 after the first failure)."""
    if attempts < 1:
        return 0
    if attempts <= len(RETRY_DELAYS_S):
        return RETRY_DELAYS_S[attempts - 1]
    return LATE_RETRY_DELAY_S


def next_attempt_at(created_at: dt.datetime, attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try a failed event again; None once it is older than 24 hours (give up)."""
    if now - created_at >= GIVE_UP_AFTER:
        return None
    return now + dt.timedelta(seconds=retry_delay_s(attempts))


def is_to_disable(failing_since: dt.datetime | None, now: dt.datetime) -> bool:
    """A subscription failing without a success for 24 hours is disabled."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER


def is_delivered(status_code: int | None) -> bool:
    """2xx is delivered; any other answer, a timeout or a connection error is retried."""
    return status_code is not None and 200 <= status_code < 300


def address_refusal(address: str) -> str | None:
    """Why this IP address may not receive webhooks, or None when it may."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    checks = (
        (ip.is_loopback, "a loopback"),
        (ip.is_link_local, "a link-local"),
        (ip.is_multicast, "a multicast"),
        (ip.is_unspecified, "an unspecified"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a shared (CGNAT)"),
        (ip.is_private, "a private"),
        (ip.is_reserved, "a reserved"),
        (not ip.is_global, "not a public"),
    )
    for is_refused, kind in checks:
        if is_refused:
            return f"{ip} is {kind} address"
    return None


def url_refusal(url: str) -> str | None:
    """Why this URL cannot be a webhook (scheme, host, userinfo), or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        return f"not a valid URL: {error}"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    return None


def literal_address(host: str) -> str | None:
    """The host as an IP address when it is written as one, else None (a name to resolve)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None
