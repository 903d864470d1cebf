"""The campaign lane's in-flight limit follows the gateway's latency."""

import pytest

from shared.domain.concurrency import WINDOW_SAMPLES, GradientLimit

pytestmark = pytest.mark.unit


def feed(limit: GradientLimit, rtt_of, windows: int) -> None:
    """Play `windows` windows in which the round trip depends on the slots in flight."""
    for _ in range(windows):
        rtt = rtt_of(limit.slots)
        for _ in range(WINDOW_SAMPLES):
            limit.record(rtt)


def test_a_gateway_with_a_steady_latency_keeps_the_limit_at_its_ceiling():
    limit = GradientLimit(ceiling=1000)
    feed(limit, lambda in_flight: 0.05, 8)  # doubling from the floor: 16 .. 1,000
    assert limit.slots == 1000
    feed(limit, lambda in_flight: 0.05, 500)
    assert limit.slots == 1000


def test_a_gateway_that_queues_keeps_the_limit_near_what_it_serves_without_a_queue():
    # 2,000 answers a second at best, 2 ms each when idle: more in flight only queues.
    def queueing(in_flight: int) -> float:
        return max(0.002, in_flight / 2000)

    limit = GradientLimit(ceiling=1000)
    seen = []
    for _ in range(300):
        feed(limit, queueing, 1)
        seen.append(limit.slots)
    steady = seen[50:]
    # Answers within a few times the fastest (8 ms at the floor) instead of half a second.
    assert max(queueing(n) for n in steady) <= 0.05
    assert min(steady) >= 16


def test_the_limit_comes_back_when_the_gateway_recovers():
    limit = GradientLimit(ceiling=500)
    feed(limit, lambda n: max(0.002, n / 1000), 150)
    low = limit.slots
    feed(limit, lambda n: 0.05, 70)  # a probe at the floor learns the new steady latency
    assert low < 100 and limit.slots == 500


def test_the_floor_and_the_ceiling_hold():
    limit = GradientLimit(ceiling=10, floor=16)
    assert limit.slots == 10
    limit = GradientLimit(ceiling=1000, floor=16)
    feed(limit, lambda n: 0.001 * n * n, 150)  # latency grows with every request in flight
    assert limit.slots < 40
