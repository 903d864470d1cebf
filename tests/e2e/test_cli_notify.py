"""`herald notify` as a process against the running stack: the id, the gateway, the exit code."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import WRITE_TOKEN
from tests.e2e.conftest import Running

ROOT = Path(__file__).resolve().parents[2]


def herald(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m services.cli` against the stack; no `.env` of the checkout is read."""
    env = {**os.environ, "HERALD_API_URL": running.api_url, "HERALD_API_TOKEN": WRITE_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def a_phone() -> str:
    return f"+7916{secrets.randbelow(10_000_000):07d}"


def test_notify_prints_the_id_follows_it_to_sent_and_exits_zero(running: Running) -> None:
    phone = a_phone()

    done = herald(running, "notify", "--channel", "http", "--to", phone, "--text", "Code 1234")

    assert done.returncode == 0, (done.stdout, done.stderr)
    first, *statuses = done.stdout.splitlines()
    notification_id = int(first)
    assert statuses[-1] == "sent"
    notification = running.api.request("GET", f"/notifications/{notification_id}")
    # Worth delivering until the notification expires, and the gateway is told so.
    expires_at = dt.datetime.fromisoformat(notification["expires_at"]).astimezone(dt.UTC)
    assert running.gateway.last_body(notification_id) == {
        "id": notification_id,
        "phone": phone.lstrip("+"),
        "text": "Code 1234",
        "valid_until": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert notification["status"] == "sent"


def test_the_same_key_twice_sends_once(running: Running) -> None:
    phone, key = a_phone(), f"cli-{secrets.token_hex(4)}"
    command = ("notify", "--channel", "http", "--to", phone, "--text", "Once")

    first = herald(running, *command, "--idempotency-key", key)
    again = herald(running, *command, "--idempotency-key", key)

    assert (first.returncode, again.returncode) == (0, 0), (first.stderr, again.stderr)
    notification_id = int(first.stdout.splitlines()[0])
    assert again.stdout.splitlines()[0] == f"{notification_id} (replayed)"
    assert running.gateway.delivery_count(notification_id) == 1


def test_a_refused_request_exits_two_and_names_the_field(running: Running) -> None:
    done = herald(running, "notify", "--channel", "http", "--to", a_phone())

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    head, *fields = done.stderr.splitlines()
    assert head.startswith("error: 422 ")
    assert fields and all(line.startswith("  ") and ": " in line for line in fields)
