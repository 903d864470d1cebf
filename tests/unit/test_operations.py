"""Operations read model pieces: the worst breaker state, the cached dead-letter count, the
management UI links, the sender.health envelope, and the timeline's bucket widths."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from services.api.core.operations import (
    DEAD_LETTERS_FRESH_S,
    DEAD_LETTERS_RETRY_S,
    DeadLetters,
    management_urls,
    worst_state,
)
from services.api.core.timeline import MAX_POINTS, bucket_start, bucket_width
from shared.config import Settings
from shared.messaging.envelopes import DecodeError, SenderHealth


def test_the_worst_breaker_state_wins() -> None:
    assert worst_state(["closed", "half-open", "closed"]) == "half-open"
    assert worst_state(["closed", "open", "half-open"]) == "open"
    assert worst_state(["closed"]) == "closed"
    assert worst_state([]) == "unknown"


class Broker:
    def __init__(self) -> None:
        self.asked = 0
        self.depth = 3
        self.down = False

    def __call__(self) -> int:
        self.asked += 1
        if self.down:
            raise ConnectionRefusedError("refused")
        return self.depth


def test_the_dead_letter_count_is_asked_once_per_freshness_period() -> None:
    broker, now = Broker(), [100.0]
    count = DeadLetters(broker, clock=lambda: now[0])
    assert (count(), count(), broker.asked) == (3, 3, 1)
    broker.depth = 5
    now[0] += DEAD_LETTERS_FRESH_S
    assert (count(), broker.asked) == (5, 2)


def test_an_unreachable_broker_gives_none_and_is_not_asked_again_at_once() -> None:
    broker, now = Broker(), [100.0]
    count = DeadLetters(broker, clock=lambda: now[0])
    broker.down = True
    assert count() is None
    now[0] += DEAD_LETTERS_RETRY_S - 0.1
    assert (count(), broker.asked) == (None, 1)
    broker.down = False
    now[0] += 0.1
    assert count() == 3


def test_a_management_link_per_node_host() -> None:
    nodes = "amqp://u:p@10.0.0.1:5672/v,amqp://u:p@10.0.0.2:5673/v,amqp://u:p@10.0.0.1:5674/v"
    settings = Settings(amqp_url=nodes)
    assert management_urls(settings) == ["http://10.0.0.1:15672/", "http://10.0.0.2:15672/"]


def test_sender_health_round_trip() -> None:
    health = SenderHealth("host.1.ab", {"http": "closed"}, {"alpha": "open", "beta": "half-open"})
    assert SenderHealth.decode(health.encode()) == health


@pytest.mark.parametrize(
    "body",
    [
        {"instance": "", "circuits": {}, "gateways": {}},
        {"instance": "x" * 201, "circuits": {}, "gateways": {}},
        {"instance": "a", "circuits": {"http": "broken"}, "gateways": {}},
        {"instance": "a", "circuits": {}, "gateways": []},
        {"circuits": {}, "gateways": {}},
    ],
)
def test_sender_health_refuses_a_body_that_makes_no_sense(body: dict) -> None:
    with pytest.raises(DecodeError):
        SenderHealth.decode(json.dumps({"v": 1, **body}).encode())


@pytest.mark.parametrize(
    ("span_s", "width"),
    [(0, 1), (59, 1), (61, 2), (600, 10), (3600, 60), (6 * 3600, 600), (10**9, 86400)],
)
def test_the_bucket_width_fits_the_span_in_the_chart(span_s: float, width: int) -> None:
    assert bucket_width(span_s) == width
    assert span_s / width <= MAX_POINTS or width == 86400


def test_buckets_start_on_round_times() -> None:
    moment = dt.datetime(2026, 12, 1, 10, 9, 37, 500000, tzinfo=dt.UTC)
    assert bucket_start(moment, 60) == dt.datetime(2026, 12, 1, 10, 9, tzinfo=dt.UTC)
    assert bucket_start(moment, 10) == dt.datetime(2026, 12, 1, 10, 9, 30, tzinfo=dt.UTC)
