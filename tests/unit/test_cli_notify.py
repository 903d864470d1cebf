"""`herald notify`'s pure parts: its arguments, recipients, variables and status lines."""

from __future__ import annotations

import argparse

import pytest

from herald_client import Notification
from services.cli.__main__ import build_parser
from services.cli.notify import exit_code, parse_to, parse_var, status_line


def test_the_options_are_read_into_one_request() -> None:
    args = build_parser().parse_args(
        ["notify", "--channel", "email", "--to", "client:42", "--text", "Code 1234"]
        + ["--subject", "S", "--html", "<p>H</p>", "--template", "otp"]
        + ["--var", "code=1234", "--var", "expr=a=b", "--expires-at", "2030-01-01T00:00:00Z"]
        + ["--idempotency-key", "k-1", "--no-wait"]
    )

    assert (args.group, args.channel, args.to, args.text) == (
        "notify", "email", {"client_id": 42}, "Code 1234"
    )  # fmt: skip
    assert (args.subject, args.html, args.template) == ("S", "<p>H</p>", "otp")
    assert dict(args.variables) == {"code": "1234", "expr": "a=b"}
    assert args.expires_at == "2030-01-01T00:00:00+00:00"
    assert (args.idempotency_key, args.no_wait, args.timeout) == ("k-1", True, None)


def test_without_options_it_follows_the_notification_and_makes_its_own_key() -> None:
    args = build_parser().parse_args(["notify", "--channel", "http", "--to", "+79161234567"])

    assert (args.to, args.variables, args.idempotency_key, args.no_wait) == (
        {"phone": "+79161234567"}, [], None, False
    )  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+79161234567", {"phone": "+79161234567"}),
        ("ann@example.org", {"email": "ann@example.org"}),
        ("client:7", {"client_id": 7}),
    ],
)
def test_to_is_a_phone_an_address_or_a_client_id(given: str, expected: dict[str, object]) -> None:
    assert parse_to(given) == expected


@pytest.mark.parametrize("given", ["client:", "client:x", "ann"])
def test_anything_else_is_refused_before_sending(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_to(given)


@pytest.mark.parametrize("given", ["code", "=1234"])
def test_a_variable_needs_a_key_and_an_equals_sign(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_var(given)


@pytest.mark.parametrize(
    ("status", "data", "line", "code"),
    [
        ("queued", {"attempts": 0}, "queued", 1),
        ("queued", {"attempts": 1, "last_error": "HTTP 503"}, "queued (attempt 1: HTTP 503)", 1),
        ("sent", {"attempts": 2}, "sent", 0),
        (
            "failed",
            {"attempts": 3, "last_error": "HTTP 400"},
            "failed after 3 attempts: HTTP 400",
            1,
        ),
        ("expired", {"attempts": 0}, "expired", 1),
        ("delivered", {"attempts": 1}, "delivered", 0),
        (
            "undelivered",
            {"attempts": 1, "last_error": "absent subscriber"},
            "undelivered after 1 attempts: absent subscriber",
            1,
        ),
    ],
)
def test_each_status_is_one_line_and_only_sent_or_delivered_exits_zero(
    status: str, data: dict[str, object], line: str, code: int
) -> None:
    notification = Notification(1, status, data=data)

    assert (status_line(notification), exit_code(notification)) == (line, code)
