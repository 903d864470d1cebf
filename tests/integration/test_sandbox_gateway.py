"""The sandbox gateway over loopback: protocol, faults, scripts, recording, process mode."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.gateway import ReceiptOptions, ReceiptPoster
from tests.support.fake_gateway import GATEWAY_TOKEN, FakeGateway
from tests.support.waiting import wait_until

SUCCESS = b'{"code": 0, "message": "OK"}'


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as server:
        yield server


def post(
    gateway: FakeGateway, path: str, body: object, token: str = GATEWAY_TOKEN
) -> requests.Response:
    return requests.post(
        gateway.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_valid_send_gets_the_exact_success_reply(gateway: FakeGateway) -> None:
    reply = gateway.send(7, phone="79001234567", text="hi")

    assert reply.status_code == 200
    assert reply.content == SUCCESS
    assert reply.json() == {"code": 0, "message": "OK"}
    assert gateway.last_body(7) == {"id": 7, "phone": "79001234567", "text": "hi"}


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-token"}, {"Authorization": GATEWAY_TOKEN}, {}],
    ids=["wrong", "not-bearer", "missing"],
)
def test_wrong_or_missing_token_is_401(gateway: FakeGateway, headers: dict[str, str]) -> None:
    body = {"id": 7, "phone": "79001234567", "text": "hi"}

    reply = requests.post(gateway.url + "/v1/send/7", json=body, headers=headers, timeout=10)

    assert reply.status_code == 401
    assert reply.json()["code"] == 401
    assert gateway.delivery_count(7) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": 8, "phone": "79001234567", "text": "hi"}, "id"),
        ({"id": "7", "phone": "79001234567", "text": "hi"}, "id"),
        ({"id": 7, "phone": "+7 900", "text": "hi"}, "phone"),
        ({"id": 7, "phone": 79001234567, "text": "hi"}, "phone"),
        ({"id": 7, "phone": "79001234567"}, "text"),
        ([7], "body"),
    ],
)
def test_invalid_body_is_422_naming_the_field(
    gateway: FakeGateway, body: object, field: str
) -> None:
    reply = post(gateway, "/v1/send/7", body)

    assert reply.status_code == 422
    assert field in reply.json()["errors"]
    assert gateway.delivery_count(7) == 0


def test_non_json_body_and_non_integer_path_are_400(gateway: FakeGateway) -> None:
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}

    not_json = requests.post(gateway.url + "/v1/send/7", data=b"{oops", headers=headers, timeout=10)
    bad_path = post(gateway, "/v1/send/seven", {"id": 7, "phone": "7900", "text": "x"})

    assert not_json.status_code == 400
    assert bad_path.status_code == 400


def test_delay_is_honoured() -> None:
    with FakeGateway(delay_ms=200) as gateway:
        started = time.monotonic()
        reply = gateway.send(1)
        elapsed = time.monotonic() - started

    assert reply.status_code == 200
    assert elapsed >= 0.2


def test_fail_rate_one_answers_500_and_delivers_nothing() -> None:
    with FakeGateway(fail_rate=1.0) as gateway:
        replies = [gateway.send(1) for _ in range(3)]

        assert [r.status_code for r in replies] == [500, 500, 500]
        assert gateway.stats()["deliveries"] == 0
        assert gateway.stats()["outcomes"] == {"status_500": 3}


@pytest.mark.parametrize(
    ("rate", "status"), [("status_429_rate", 429), ("reject_rate", 400), ("fail_rate", 500)]
)
def test_each_fault_rate_answers_its_status(rate: str, status: int) -> None:
    with FakeGateway(GATEWAY_TOKEN, **{rate: 1.0}) as gateway:
        assert gateway.send(1).status_code == status


def test_malformed_rate_answers_200_with_a_body_that_is_not_the_success_reply() -> None:
    with FakeGateway(malformed_rate=1.0) as gateway:
        reply = gateway.send(1)

        assert reply.status_code == 200
        assert reply.content != SUCCESS
        assert gateway.delivery_count(1) == 0


def test_timeout_rate_never_answers_before_the_client_gives_up() -> None:
    with FakeGateway(timeout_rate=1.0) as gateway:
        with pytest.raises(requests.Timeout):
            gateway.send(1, timeout_s=0.3)

        assert gateway.stats()["outcomes"] == {"timeout": 1}


def test_slow_rate_answers_success_after_slow_ms() -> None:
    with FakeGateway(slow_rate=1.0, slow_ms=300) as gateway:
        started = time.monotonic()
        reply = gateway.send(1)
        elapsed = time.monotonic() - started

        assert reply.content == SUCCESS
        assert elapsed >= 0.3
        assert gateway.delivery_count(1) == 1


def test_random_faults_repeat_for_the_same_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with FakeGateway(seed=seed, fail_rate=0.5) as gateway:
            return [gateway.send(i).status_code for i in range(20)]

    first = statuses(seed=3)

    assert first == statuses(seed=3)
    assert set(first) == {200, 500}


def test_scripted_statuses_are_answered_in_order_then_success(gateway: FakeGateway) -> None:
    gateway.set_script({7: [503, 503]})

    answers = [gateway.send(7).status_code for _ in range(3)]

    assert answers == [503, 503, 200]
    assert gateway.send(8).status_code == 200
    assert gateway.delivery_count(7) == 1


def test_script_hook_sees_the_attempt_number(gateway: FakeGateway) -> None:
    gateway.set_script(lambda message_id, attempt: 429 if attempt == 1 else None)

    answers = [gateway.send(5).status_code for _ in range(2)]

    assert answers == [429, 200]


def test_behaviour_changes_at_runtime(gateway: FakeGateway) -> None:
    assert gateway.send(1).status_code == 200

    gateway.set_behaviour(fail_rate=1.0, fail_status=503)

    assert gateway.send(1).status_code == 503


def test_stats_count_deliveries_distinct_ids_and_duplicates(gateway: FakeGateway) -> None:
    for message_id in (1, 2, 2, 3, 3, 3):
        gateway.send(message_id)
    gateway.send(4, token="wrong")

    stats = gateway.stats()

    assert stats["requests"] == 7
    assert stats["deliveries"] == 6
    assert stats["distinct_ids"] == 3
    assert stats["duplicates"] == 3
    assert stats["outcomes"] == {"delivered": 6, "unauthorized": 1}
    assert stats["first_success_monotonic"] <= stats["last_success_monotonic"]
    assert gateway.delivery_count(3) == 3
    assert gateway.delivered_ids() == {1, 2, 3}
    assert [r.message_id for r in gateway.requests()] == [1, 2, 2, 3, 3, 3, None]


def test_stats_and_reset_over_http(gateway: FakeGateway) -> None:
    gateway.send(1)
    gateway.send(1)

    stats = requests.get(gateway.url + "/_stats", timeout=10).json()
    reset = requests.post(gateway.url + "/_reset", timeout=10)

    assert stats["deliveries"] == 2
    assert stats["duplicates"] == 1
    assert isinstance(stats["last_success_at"], float)
    assert reset.status_code == 200
    assert requests.get(gateway.url + "/_stats", timeout=10).json()["requests"] == 0


def test_counts_only_mode_keeps_no_bodies() -> None:
    with FakeGateway(record_bodies=False) as gateway:
        gateway.send(1)
        gateway.send(1)

        assert gateway.stats()["duplicates"] == 1
        assert gateway.last_body(1) is None
        assert gateway.requests() == []


def test_process_mode_serves_and_stops_cleanly_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "sandbox.gateway", "--port", "0", "--token", GATEWAY_TOKEN]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-2]
        reply = requests.post(
            url + "/v1/send/3",
            json={"id": 3, "phone": "79001234567", "text": "hi"},
            headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
            timeout=10,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=30)

    assert reply.content == SUCCESS
    assert returncode == 0


def test_script_can_inject_malformed_replies_and_rejects_unknown_steps(
    gateway: FakeGateway,
) -> None:
    gateway.script_statuses(9, ["malformed"])

    first, second = gateway.send(9), gateway.send(9)

    assert (first.status_code, second.content) == (200, SUCCESS)
    assert first.content != SUCCESS
    with pytest.raises(ValueError):
        gateway.script_statuses(9, ["explode"])


# --- receipts posted back -------------------------------------------------------------------

RECEIPTS_TOKEN = "receipts-token"


class ReceiptsReceiver:
    """A loopback stand-in for Herald's receipts endpoint: records each POST it takes.

    It refuses the first `refuse` POSTs with a 503, so the gateway must send them again.
    """

    def __init__(self, refuse: int = 0) -> None:
        self.posts: list[tuple[float, str, list[dict[str, Any]]]] = []
        self.refused = 0
        self._refuse = refuse
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    if receiver.refused < receiver._refuse:
                        receiver.refused += 1
                        status = 503
                    else:
                        auth = self.headers.get("Authorization", "")
                        receiver.posts.append((time.monotonic(), auth, json.loads(body)))
                        status = 202
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v1/receipts/http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReceiptsReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def receipts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for _, _, batch in self.posts for r in batch]


def send_many(gateway: FakeGateway, ids: range) -> dict[int, float]:
    """Send each id once; return when each was sent."""
    sent = {}
    with requests.Session() as session:
        for message_id in ids:
            sent[message_id] = time.monotonic()
            reply = session.post(
                f"{gateway.url}/v1/send/{message_id}",
                json={"id": message_id, "phone": "79001234567", "text": "hi"},
                headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                timeout=10,
            )
            assert reply.status_code == 200
    return sent


def test_receipts_come_back_for_every_accepted_message_after_the_delay() -> None:
    with ReceiptsReceiver() as receiver:
        options = ReceiptOptions(receiver.url, RECEIPTS_TOKEN, delay_s=0.3, undelivered_share=0.2)
        with FakeGateway(receipts=options) as gateway:
            gateway.script_statuses(105, [500])  # refused: no receipt for it
            requests.post(
                f"{gateway.url}/v1/send/105",
                json={"id": 105, "phone": "79001234567", "text": "hi"},
                headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                timeout=10,
            )
            sent = send_many(gateway, range(1, 101))
            receipts = wait_until(lambda: len(r := receiver.receipts()) >= 100 and r, timeout=10)
            stats = requests.get(f"{gateway.url}/_stats", timeout=10).json()["receipts"]

    assert sorted(r["id"] for r in receipts) == list(range(1, 101))
    assert {auth for _, auth, _ in receiver.posts} == {f"Bearer {RECEIPTS_TOKEN}"}
    undelivered = [r for r in receipts if r["status"] == "undelivered"]
    assert 5 <= len(undelivered) <= 40  # a seeded draw around 20%
    assert {r["error"] for r in undelivered} == {"absent subscriber"}
    assert {r["status"] for r in receipts} == {"delivered", "undelivered"}
    assert all(dt.datetime.fromisoformat(r["at"]).tzinfo is not None for r in receipts)
    # None comes back before its delay has passed since it was sent.
    arrived = {r["id"]: at for at, _, batch in receiver.posts for r in batch}
    assert all(arrived[i] >= sent[i] + 0.3 for i in sent)
    assert (stats["posted"], stats["undelivered"]) == (100, len(undelivered))


def test_receipts_are_batched_up_to_a_thousand_per_post() -> None:
    with ReceiptsReceiver() as receiver:
        poster = ReceiptPoster(ReceiptOptions(receiver.url, RECEIPTS_TOKEN, delay_s=0))
        for message_id in range(2500):
            poster.accepted(message_id)
        poster.start()
        try:
            wait_until(lambda: len(receiver.receipts()) >= 2500, timeout=10)
        finally:
            poster.stop()

    sizes = [len(batch) for _, _, batch in receiver.posts]
    assert sum(sizes) == 2500 and max(sizes) == 1000 and len(sizes) == 3
    assert len({r["id"] for r in receiver.receipts()}) == 2500


def test_a_refused_post_is_sent_again_and_nothing_is_lost() -> None:
    with ReceiptsReceiver(refuse=2) as receiver:
        options = ReceiptOptions(receiver.url, RECEIPTS_TOKEN, delay_s=0, undelivered_share=0)
        with FakeGateway(receipts=options) as gateway:
            send_many(gateway, range(1, 21))
            wait_until(lambda: len(receiver.receipts()) >= 20, timeout=15)
            stats = gateway.app.receipts.stats() if gateway.app.receipts else {}

    assert receiver.refused == 2
    assert sorted(r["id"] for r in receiver.receipts()) == list(range(1, 21))
    assert {r["status"] for r in receiver.receipts()} == {"delivered"}
    assert stats["failed_posts"] == 2


def test_without_a_receipts_url_nothing_is_posted(gateway: FakeGateway) -> None:
    gateway.send(7, phone="79001234567", text="hi")

    assert gateway.app.receipts is None
    assert "receipts" not in requests.get(f"{gateway.url}/_stats", timeout=10).json()


def test_process_mode_takes_the_receipts_url_and_token_from_the_environment() -> None:
    with ReceiptsReceiver() as receiver:
        cmd = [sys.executable, "-m", "sandbox.gateway", "--port", "0", "--token", GATEWAY_TOKEN]
        cmd += ["--receipt-delay-s", "0", "--undelivered-share", "1"]
        env = {**os.environ, "SANDBOX_RECEIPTS_URL": receiver.url}
        env["SANDBOX_RECEIPTS_TOKEN"] = RECEIPTS_TOKEN
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-2]
            requests.post(
                url + "/v1/send/3",
                json={"id": 3, "phone": "79001234567", "text": "hi"},
                headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                timeout=10,
            )
            receipts = wait_until(receiver.receipts, timeout=10)
        finally:
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=30)

    assert [(r["id"], r["status"]) for r in receipts] == [(3, "undelivered")]
    assert receiver.posts[0][1] == f"Bearer {RECEIPTS_TOKEN}"
    assert returncode == 0


def test_process_mode_refuses_a_receipts_url_without_a_token() -> None:
    cmd = [sys.executable, "-m", "sandbox.gateway", "--port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_RECEIPTS")}
    done = subprocess.run(
        [*cmd, "--receipts-url", "http://127.0.0.1:9/x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )

    assert done.returncode == 2
    assert "needs a token" in done.stderr
