"""The sandbox gateway over loopback: protocol, faults, scripts, recording, process mode."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.fake_gateway import GATEWAY_TOKEN, FakeGateway

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
