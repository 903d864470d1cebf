"""Webhook rules: the retry schedule, refused URLs and addresses, answer classification."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.webhooks import (
    EVENT_TYPES,
    address_refusal,
    is_delivered,
    is_to_disable,
    next_attempt_at,
    retry_delay_s,
    url_refusal,
)

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def test_twelve_event_types_are_known() -> None:
    assert len(set(EVENT_TYPES)) == 12
    assert {"message.sent", "notification.undelivered", "campaign.expired"} <= set(EVENT_TYPES)


def test_delays_grow_then_settle_at_three_hours() -> None:
    delays = [retry_delay_s(n) for n in range(1, 12)]

    assert delays[:3] == [5, 30, 120]
    assert delays == sorted(delays)
    assert delays[-1] == 3 * 3600


def test_an_event_is_retried_until_it_is_a_day_old() -> None:
    young = NOW - dt.timedelta(hours=23)
    old = NOW - dt.timedelta(hours=24)

    assert next_attempt_at(young, 1, NOW) == NOW + dt.timedelta(seconds=5)
    assert next_attempt_at(old, 9, NOW) is None


@pytest.mark.parametrize(
    ("failing_for", "is_disabled"),
    [(None, False), (dt.timedelta(hours=23), False), (dt.timedelta(hours=24), True)],
)
def test_a_subscription_failing_for_a_day_is_disabled(
    failing_for: dt.timedelta | None, is_disabled: bool
) -> None:
    since = None if failing_for is None else NOW - failing_for

    assert is_to_disable(since, NOW) is is_disabled


@pytest.mark.parametrize(
    ("status", "delivered"),
    [
        (200, True),
        (204, True),
        (299, True),
        (301, False),
        (429, False),
        (500, False),
        (None, False),
    ],
)
def test_only_2xx_counts_as_delivered(status: int | None, delivered: bool) -> None:
    assert is_delivered(status) is delivered


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_inner_addresses_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "example.org/hook",
        "http:///hook",
        "https://user:pw@example.org/hook",
        "https://user@example.org/hook",
        "http://example.org:99999/",
    ],
)
def test_urls_other_than_plain_http_s_are_refused(url: str) -> None:
    assert url_refusal(url) is not None


@pytest.mark.parametrize(
    "url", ["https://example.org/hook", "http://example.org:8080/a?b=c", "http://[2606:4700::1]/"]
)
def test_http_s_urls_with_a_host_pass(url: str) -> None:
    assert url_refusal(url) is None
