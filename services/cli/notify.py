"""`herald notify`: send one notification through the SDK and follow it until it is final.

Exits 0 once sent or delivered, 1 if it failed, expired, was cancelled or undelivered, 2 if
the API refused it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from herald_client import HeraldClient, HeraldError, Notification
from herald_client.bodies import recipient
from services.cli.campaigns import parse_when
from shared.domain import channels

REFUSED = 2
CLIENT_PREFIX = "client:"


def add_arguments(notify: argparse.ArgumentParser) -> None:
    """The options of `herald notify`."""
    notify.add_argument("--channel", choices=channels.names(), required=True)
    notify.add_argument(
        "--to", type=parse_to, required=True, help="a phone (+7...), an e-mail, or client:<id>"
    )
    notify.add_argument("--text")
    notify.add_argument("--subject", help="e-mail subject")
    notify.add_argument("--html", help="e-mail HTML part")
    notify.add_argument("--template", help="a stored template's name")
    notify.add_argument(
        "--var",
        dest="variables",
        type=parse_var,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template variable (repeatable)",
    )
    notify.add_argument("--expires-at", type=parse_when, help="ISO 8601 or +1h")
    notify.add_argument("--idempotency-key", help="default: a fresh uuid4")
    notify.add_argument("--no-wait", action="store_true", help="print the id and exit")
    notify.add_argument("--timeout", type=float, help="give up following after this many seconds")


def parse_to(value: str) -> dict[str, Any]:
    """client:<id>, a phone or an e-mail address as the API's recipient object."""
    if value.startswith(CLIENT_PREFIX):
        number = value[len(CLIENT_PREFIX) :]
        if not number.isdigit():
            raise argparse.ArgumentTypeError(f"not a client id: {value!r}")
        return {"client_id": int(number)}
    try:
        return recipient(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_var(value: str) -> tuple[str, str]:
    """key=value as a pair; the value may hold '=' itself."""
    key, sep, text = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key.strip(), text


# Taken by the gateway; a receipt may already say it arrived. Undelivered did not.
TAKEN = frozenset({"sent", "delivered"})


def status_line(notification: Notification) -> str:
    """`queued`, `queued (attempt 2: HTTP 503)`, `sent`, `failed after 3 attempts: ...`."""
    attempts = notification.data.get("attempts") or 0
    error = notification.data.get("last_error")
    if notification.status in TAKEN or not attempts:
        return notification.status
    if notification.is_final:
        return f"{notification.status} after {attempts} attempts: {error or 'no reason given'}"
    return f"{notification.status} (attempt {attempts}: {error or 'no reason given'})"


def exit_code(notification: Notification) -> int:
    return 0 if notification.status in TAKEN else 1


def run(client: HeraldClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Send, print the id, then one status line per change (redrawn on a terminal)."""
    try:
        accepted = client.notify(
            args.channel,
            args.to,
            args.text,
            subject=args.subject,
            html=args.html,
            template=args.template,
            variables=dict(args.variables) or None,
            expires_at=args.expires_at,
            idempotency_key=args.idempotency_key,
        )
    except HeraldError as exc:
        print("\n".join(error_lines(exc)), file=err)
        return REFUSED if exc.status is not None and 400 <= exc.status < 500 else 1
    print(f"{accepted.id}{' (replayed)' if accepted.is_replayed else ''}", file=out, flush=True)
    if args.no_wait:
        print(accepted.status, file=out)
        return 0
    in_place = out.isatty()

    def show(notification: Notification) -> None:
        line = status_line(notification)
        if in_place:
            print(f"\r{line}\x1b[K", end="", file=out, flush=True)
        else:
            print(line, file=out, flush=True)

    try:
        final = client.wait(accepted.id, timeout=args.timeout, on_change=show)
    except (HeraldError, TimeoutError) as exc:
        if in_place:
            print(file=out)
        print(f"error: {exc}", file=err)
        return 1
    if in_place:
        print(file=out)
    return exit_code(final)


def error_lines(error: HeraldError) -> Sequence[str]:
    """`error: 422 ...`, then one `  field: reason` line per field error."""
    head = f"error: {error.status} {error.message}" if error.status else f"error: {error.message}"
    return [head] + [
        f"  {path}: {reason}" for path, reasons in error.field_errors.items() for reason in reasons
    ]
