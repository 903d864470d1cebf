"""The SDK against a loopback HTTP server: one idempotency key across retries, none on 4xx.

The server plays a script of replies ("drop" closes the connection unanswered) and records
every request's Idempotency-Key header and body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from herald_client import HeraldClient, HeraldError, Notification

DROP = "drop"


@dataclass
class Seen:
    method: str
    path: str
    key: str | None
    body: Any


@dataclass
class Script:
    replies: list[tuple[int, Any] | str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, request: Seen) -> tuple[int, Any] | str:
        with self.lock:
            self.seen.append(request)
            return self.replies.pop(0) if self.replies else (500, {"message": "unscripted"})


class Handler(BaseHTTPRequestHandler):
    script: Script

    def do_POST(self) -> None:
        self.answer()

    def do_GET(self) -> None:
        self.answer()

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Seen(
            self.command,
            self.path,
            self.headers.get("Idempotency-Key"),
            json.loads(raw) if raw else None,
        )
        reply = self.script.next_reply(request)
        if isinstance(reply, str):  # DROP: close the connection without a reply
            self.close_connection = True
            return
        status, body = reply
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    handler = type("ScriptedHandler", (Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def client(url: str, retries: int = 3) -> HeraldClient:
    return HeraldClient(url, "t0ken", timeout=5, retries=retries, backoff_s=0.01)


@pytest.mark.parametrize("first", [(503, {"message": "busy"}), DROP], ids=["503", "dropped"])
def test_a_retried_notification_carries_the_same_key_every_time(
    server: tuple[str, Script], first: tuple[int, Any] | str
) -> None:
    url, script = server
    script.replies = [first, (202, {"id": 7, "status": "queued"})]

    accepted = client(url).notify("http", "+79161234567", "Code 1234")

    assert accepted == Notification(7, "queued", data={"id": 7, "status": "queued"})
    assert len(script.seen) == 2
    [key] = {seen.key for seen in script.seen}
    assert key is not None and len(key) == 36
    assert [seen.body for seen in script.seen] == [
        {"channel": "http", "to": {"phone": "+79161234567"}, "text": "Code 1234"}
    ] * 2


def test_a_given_key_is_sent_as_given(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies = [(202, {"id": 1, "status": "queued"})]

    client(url).notify("email", "a@b.org", "Hi", subject="S", idempotency_key="order-17")

    assert [seen.key for seen in script.seen] == ["order-17"]


def test_a_refusal_is_not_retried_and_names_the_fields(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies = [
        (422, {"code": 422, "status": "Unprocessable Entity", "message": "Invalid.",
               "errors": {"json": {"text": ["Missing data for required field."]}}}),
    ]  # fmt: skip

    with pytest.raises(HeraldError) as refused:
        client(url).notify("http", "+79161234567")

    assert len(script.seen) == 1
    assert refused.value.status == 422
    assert refused.value.field_errors == {"text": ["Missing data for required field."]}


def test_after_the_last_retry_the_last_failure_is_raised(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies = [(502, {}), (504, {}), (503, {"status": "Service Unavailable"})]

    with pytest.raises(HeraldError) as failed:
        client(url, retries=2).notify("http", "+79161234567", "x")

    assert len(script.seen) == 3
    assert len({seen.key for seen in script.seen}) == 1
    assert failed.value.status == 503


def test_many_items_keep_their_keys_across_a_retry_in_requests_of_a_thousand(
    server: tuple[str, Script],
) -> None:
    url, script = server
    items = [{"channel": "http", "to": f"+7916{n:07d}", "text": "Hi"} for n in range(1500)]
    script.replies = [
        (503, {}),
        (202, {"items": [{"id": n, "status": "queued"} for n in range(1000)]}),
        (202, {"items": [{"id": 1000, "status": "queued"}, {"errors": {"json": {"to": ["Bad."]}}}]
               + [{"id": n, "status": "queued"} for n in range(1002, 1500)]}),
    ]  # fmt: skip

    results = client(url).notify_many(items)

    first, retried, second = (seen.body for seen in script.seen)
    assert first == retried and len(first) == 1000 and len(second) == 500
    keys = [item["idempotency_key"] for item in first + second]
    assert len(set(keys)) == 1500
    assert [seen.key for seen in script.seen] == [None, None, None]
    assert len(results) == 1500
    assert isinstance(results[1001], HeraldError)
    assert results[1001].field_errors == {"to": ["Bad."]}
    assert [r.id for r in results if isinstance(r, Notification)] == [
        n for n in range(1500) if n != 1001
    ]


def test_wait_follows_the_status_until_it_is_final(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies = [
        (200, {"id": 5, "status": "queued", "attempts": 0}),
        (200, {"id": 5, "status": "queued", "attempts": 0}),
        (200, {"id": 5, "status": "queued", "attempts": 1, "last_error": "HTTP 503"}),
        (200, {"id": 5, "status": "sent", "attempts": 2}),
    ]
    changes: list[str] = []

    final = client(url).wait(5, interval=0.01, on_change=lambda n: changes.append(n.status))

    assert final.status == "sent"
    assert changes == ["queued", "queued", "sent"]
    assert {seen.path for seen in script.seen} == {"/api/v1/notifications/5"}
