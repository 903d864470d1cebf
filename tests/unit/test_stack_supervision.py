"""How `make run` restarts a service that died: at once-ish, later while it keeps dying."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from deploy import stack as stack_module
from deploy.stack import STABLE_AFTER_S, Stack, restart_delay


@dataclass
class DeadProcess:
    pid: int = 4242
    returncode: int = -9

    def poll(self) -> int:
        return self.returncode


@dataclass
class LiveProcess:
    pid: int = 4343
    returncode: None = None

    def poll(self) -> None:
        return None


def test_the_delay_doubles_from_one_second_while_a_service_keeps_dying_and_is_capped():
    assert [restart_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setattr(stack_module, "say", lambda message: None)
    started: list[str] = []

    def fake_start(self: Stack, name: str | None = None) -> None:
        started.append(name or "all")
        self.services[name].process = LiveProcess()  # type: ignore[assignment]

    monkeypatch.setattr(Stack, "start", fake_start)
    built = Stack(env={}, senders=1)
    built.started = started  # type: ignore[attr-defined]
    for service in built.services.values():
        service.process = LiveProcess()  # type: ignore[assignment]
    return built


def test_a_dead_service_is_started_again_after_the_delay_and_no_other_is_touched(stack: Stack):
    sender = stack.services["sender-1"]
    sender.process, sender.started_at = DeadProcess(), 100.0  # type: ignore[assignment]

    stack.supervise(now=200.0)  # it ran 100 s: a first death, 1 s delay
    assert stack.started == []  # type: ignore[attr-defined]
    stack.supervise(now=200.5)
    assert stack.started == []  # type: ignore[attr-defined]
    stack.supervise(now=201.0)
    assert stack.started == ["sender-1"]  # type: ignore[attr-defined]
    assert sender.restarts == 1


def test_a_service_that_dies_soon_after_each_start_waits_longer_each_time(stack: Stack):
    stats = stack.services["stats"]
    delays = []
    now = 1000.0
    for _ in range(4):
        stats.process, stats.started_at = DeadProcess(), now - 1.0  # type: ignore[assignment]
        stack.supervise(now=now)
        assert stats.restart_at is not None
        delays.append(stats.restart_at - now)
        now = stats.restart_at
        stack.supervise(now=now)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    # Once it has run for a while, a new death counts as the first again.
    stats.process, stats.started_at = DeadProcess(), now - STABLE_AFTER_S  # type: ignore[assignment]
    stack.supervise(now=now)
    assert stats.restart_at == now + 1.0


def test_the_demo_adds_a_fresh_receipts_token_and_keeps_the_others() -> None:
    tokens, token = stack_module.with_receipts_token("abc:write,def:read")
    again, other = stack_module.with_receipts_token("")

    assert tokens == f"abc:write,def:read,{token}:receipts"
    assert again == f"{other}:receipts"
    assert len(token) >= 24 and token != other
