"""The deliverer against a receiver on loopback: signed POSTs of event arrays, retries, the
record of attempts, disabling after a day of failures, connect-time refusal, and a hanging
endpoint that holds up no other subscription.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, text
from standardwebhooks import Webhook as Verifier

from services.api.app import create_app
from services.api.core.webhooks import new_secret
from services.webhooks import metrics
from services.webhooks.deliverer import Deliverer
from shared.config import Settings
from shared.db.models import Message, Webhook
from shared.db.queries import statuses
from shared.messaging.envelopes import Outcome
from tests.conftest import READ_TOKEN
from tests.support.factories import make_campaign, make_clients
from tests.support.waiting import wait_until

RECEIVER_PORT = 19610
HANGING_PORT = 19611


class Receiver(ThreadingHTTPServer):
    """Keeps every POST (headers, body); answers the scripted statuses, then 200."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [json.loads(body) for p, _, body in self.posts if p == path]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.posts.append((self.path, dict(self.headers), body))
        status = self.server.answer()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(RECEIVER_PORT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_deliverer(engine: Engine, allow_private: bool = True) -> Iterator[None]:
    deliverer = Deliverer(
        engine,
        timeout_s=30.0,
        concurrency=8,
        poll_s=0.05,
        allow_private=allow_private,
        retain_days=7,
    )
    stopping = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stopping,), daemon=True)
    thread.start()
    yield
    stopping.set()
    thread.join(timeout=10)


@pytest.fixture
def deliverer(engine: Engine) -> Iterator[None]:
    yield from run_deliverer(engine)


@pytest.fixture
def strict_deliverer(engine: Engine) -> Iterator[None]:
    yield from run_deliverer(engine, allow_private=False)


def subscribe(engine: Engine, url: str, *events: str) -> tuple[int, str]:
    secret = new_secret()
    with engine.begin() as conn:
        webhook_id = conn.execute(
            insert(Webhook)
            .values(url=url, events=list(events), secret=secret)
            .returning(Webhook.id)
        ).scalar_one()
    return int(webhook_id), secret


def send_messages(engine: Engine, count: int) -> list[int]:
    """Queue `count` messages of a running campaign and move them all to sent."""
    clients = make_clients(engine, count)
    campaign_id = make_campaign(engine, status="running")
    with engine.begin() as conn:
        rows = [{"campaign_id": campaign_id, "client_id": c, "status": "queued"} for c in clients]
        conn.execute(insert(Message), rows)
        ids = list(conn.execute(text("SELECT id FROM message ORDER BY id")).scalars())
    with engine.begin() as conn:
        statuses.apply_outcomes(conn, [Outcome(i, "sent", 1, time.time(), None) for i in ids])
    return ids


def attempts(engine: Engine, webhook_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT * FROM webhook_attempt WHERE webhook_id = :w ORDER BY id"),
                {"w": webhook_id},
            )
        )


def webhook_row(engine: Engine, webhook_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM webhook WHERE id = :w"), {"w": webhook_id}).one()


def url(path: str, port: int = RECEIVER_PORT, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}{path}"


def test_1200_sent_messages_arrive_signed_in_three_posts(
    engine: Engine, receiver: Receiver, deliverer: None
) -> None:
    _, secret = subscribe(engine, url("/batch"), "message.sent")

    ids = send_messages(engine, 1200)

    wait_until(lambda: sum(map(len, receiver.bodies("/batch"))) >= 1200, timeout=30)
    posts = [p for p in receiver.posts if p[0] == "/batch"]
    assert len(posts) == 3
    events = [e for _, headers, body in posts for e in Verifier(secret).verify(body, headers)]
    assert {e["type"] for e in events} == {"message.sent"}
    assert sorted(e["data"]["id"] for e in events) == ids
    assert len({headers["webhook-id"] for _, headers, _ in posts}) == 3


def test_a_failed_post_is_retried_and_both_attempts_are_listed(
    settings: Settings, engine: Engine, receiver: Receiver, deliverer: None
) -> None:
    webhook_id, secret = subscribe(engine, url("/flaky"), "message.sent")
    receiver.statuses = [500]

    send_messages(engine, 3)
    wait_until(lambda: len(attempts(engine, webhook_id)) == 1, timeout=15)
    with engine.begin() as conn:  # the 5 s first delay, brought forward
        conn.execute(text("UPDATE webhook_event SET next_attempt_at = now()"))
    wait_until(lambda: len(attempts(engine, webhook_id)) == 2, timeout=15)

    posts = [p for p in receiver.posts if p[0] == "/flaky"]
    assert [Verifier(secret).verify(body, headers) for _, headers, body in posts][0]
    assert posts[0][1]["webhook-id"] == posts[1][1]["webhook-id"]
    api: FlaskClient = create_app(settings, engine).test_client()
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    listed = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=auth).get_json()
    assert [d["status_code"] for d in listed["items"]] == [200, 500]
    assert all(d["latency_ms"] is not None and d["events"] == 3 for d in listed["items"])
    assert listed["items"][1]["error"] == "answered 500"
    assert webhook_row(engine, webhook_id).failing_since is None


def test_a_day_of_failures_disables_the_subscription(
    engine: Engine, receiver: Receiver, deliverer: None, caplog: pytest.LogCaptureFixture
) -> None:
    webhook_id, _ = subscribe(engine, url("/down"), "message.sent")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE webhook SET failing_since = now() - interval '25 hours' WHERE id = :w"),
            {"w": webhook_id},
        )
    receiver.statuses = [503] * 10
    disabled_before = metrics.DISABLED._value.get()

    with caplog.at_level(logging.WARNING, logger="services.webhooks.deliverer"):
        send_messages(engine, 2)
        wait_until(lambda: not webhook_row(engine, webhook_id).enabled, timeout=15)

    row = webhook_row(engine, webhook_id)
    assert row.disabled_at is not None and "503" in row.disabled_reason
    assert metrics.DISABLED._value.get() == disabled_before + 1
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"webhook {webhook_id} disabled" in line and url("/down") in line for line in lines)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_an_inner_address_is_refused_at_connect_time(
    engine: Engine, receiver: Receiver, strict_deliverer: None, host: str
) -> None:
    webhook_id, _ = subscribe(engine, url("/inner", host=host), "message.sent")

    send_messages(engine, 1)
    tried = wait_until(lambda: attempts(engine, webhook_id), timeout=15)

    assert tried[0].status_code is None
    assert "refused" in tried[0].error
    assert receiver.posts == []


def test_a_hanging_endpoint_delays_no_other_subscription(
    engine: Engine, receiver: Receiver, deliverer: None
) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", HANGING_PORT))
    hanging.listen(16)  # accepts connections (the kernel does) and never answers
    try:
        subscribe(engine, url("/hang", port=HANGING_PORT), "message.sent")
        subscribe(engine, url("/fine"), "message.sent")

        send_messages(engine, 1200)
        wait_until(lambda: sum(map(len, receiver.bodies("/fine"))) >= 1200, timeout=30)

        with engine.connect() as conn:
            owed = conn.execute(
                text(
                    "SELECT count(*) FROM webhook_event e JOIN webhook w ON w.id = e.webhook_id"
                    " WHERE w.url LIKE '%/hang' AND e.delivered_at IS NULL"
                )
            ).scalar_one()
        assert owed == 3
    finally:
        hanging.close()
