"""GatewayRouter: an item goes to its route's first fit gateway, and to the next one at once
when that gateway's circuit is open, its receipts are low, its ceiling is reached or its
connection is refused; never to a second gateway after one that may have taken it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace

import pytest

from services.sender.worker import RetryPolicy, plan_results
from shared.channels.gateway_router import GatewayRouter
from shared.domain.breaker import BreakerPolicy
from shared.domain.deliveries import DeliveryItem
from shared.domain.outcomes import DEFERRED, SENT, TRANSIENT, DeliveryResult, sent, transient
from shared.domain.routes import Gateway, parse_routing

GATEWAYS = {
    "alpha": {"url": "http://127.0.0.1:1"},
    "beta": {"url": "http://127.0.0.1:2"},
    "gamma": {"url": "http://127.0.0.1:3", "per_second": 2},
}
ROUTES = {
    "operators": {"901": ["alpha", "beta"], "902": ["gamma", "beta"]},
    "prefixes": {"44": ["beta"]},
    "default": ["alpha", "beta"],
}
POLICY = BreakerPolicy(failure_ratio=0.5, min_calls=4, open_s=10.0)


@dataclass(frozen=True)
class Reply:
    result: DeliveryResult
    reached: bool = True


@dataclass
class Poster:
    """A gateway as the router sees it: answers from a list, then `then`."""

    gateway: Gateway
    answers: list[Reply] = field(default_factory=list)
    then: Reply = Reply(sent())
    posted: list[int] = field(default_factory=list)

    async def post(self, item: DeliveryItem) -> Reply:
        self.posted.append(item.message_id)
        return self.answers.pop(0) if self.answers else self.then

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def posters() -> dict[str, Poster]:
    routing = parse_routing(json.dumps(GATEWAYS), json.dumps(ROUTES), "", "")
    return {name: Poster(gateway) for name, gateway in routing.gateways.items()}


@pytest.fixture
def router(posters: dict[str, Poster], clock: Clock) -> GatewayRouter:
    routing = parse_routing(json.dumps(GATEWAYS), json.dumps(ROUTES), "", "")
    return GatewayRouter(routing, posters, POLICY, clock)


def item(message_id: int, operator: str | None = "901", phone: str = "+79120000000", text="Hi"):
    return DeliveryItem(message_id, phone, text, 1, 4e9, operator_code=operator)


def send(router: GatewayRouter, *items: DeliveryItem) -> list[DeliveryResult]:
    async def run() -> list[DeliveryResult]:
        return [await router.send(i) for i in items]

    return asyncio.run(run())


def test_an_item_takes_the_first_gateway_of_its_route(router, posters) -> None:
    results = send(router, item(1, "901"), item(2, "902"), item(3, None, "+447700"), item(4, "7"))
    assert [r.gateway for r in results] == ["alpha", "gamma", "beta", "alpha"]
    assert posters["alpha"].posted == [1, 4]
    assert {r.kind for r in results} == {SENT}


def test_a_sent_result_names_its_segments(router) -> None:
    [latin, cyrillic] = send(router, item(1, text="a" * 161), item(2, text="Ж" * 71))
    assert latin.segments == 2
    assert cyrillic.segments == 2


def test_a_refused_connection_goes_to_the_next_gateway_in_the_same_attempt(router, posters) -> None:
    posters["alpha"].then = Reply(transient("connection error: refused"), reached=False)

    [result] = send(router, item(1))

    assert result.kind == SENT
    assert result.gateway == "beta"
    assert posters["alpha"].posted == [1] and posters["beta"].posted == [1]


def test_a_failure_after_the_request_may_have_arrived_is_not_sent_elsewhere(
    router, posters
) -> None:
    posters["alpha"].then = Reply(transient("timeout"))

    [result] = send(router, item(1))

    assert result.kind == TRANSIENT
    assert result.gateway == "alpha"
    assert posters["beta"].posted == []


def test_an_open_circuit_moves_the_route_to_its_next_gateway_until_it_recovers(
    router, posters, clock
) -> None:
    posters["alpha"].answers = [Reply(transient("HTTP 503"))] * 4

    failed = send(router, *(item(i) for i in range(4)))
    moved = send(router, *(item(i) for i in range(10, 14)))

    assert {r.kind for r in failed} == {TRANSIENT}
    assert [r.gateway for r in moved] == ["beta"] * 4
    assert posters["alpha"].posted == [0, 1, 2, 3]
    # Once the open period is over, trials go to alpha again and, succeeding, close it.
    clock.now += POLICY.open_s
    back = send(router, *(item(i) for i in range(20, 20 + POLICY.trial_calls + 2)))
    assert {r.gateway for r in back} == {"alpha"}


def test_a_route_whose_every_gateway_is_open_defers_its_items(router, posters) -> None:
    for name in ("alpha", "beta"):
        posters[name].then = Reply(transient("HTTP 503"))
    send(router, *(item(i) for i in range(8)))

    [result] = send(router, item(99))

    assert result.kind == DEFERRED
    assert "route operator 901" in (result.error or "")


def test_low_delivery_by_receipts_moves_traffic_but_not_off_the_last_gateway(
    router, posters
) -> None:
    router.set_low_delivery("alpha", True, 0.4)
    [moved] = send(router, item(1))
    router.set_low_delivery("beta", True, 0.3)
    [kept] = send(router, item(2))
    router.set_low_delivery("alpha", False)
    [back] = send(router, item(3))

    assert (moved.gateway, kept.gateway, back.gateway) == ("beta", "alpha", "alpha")
    router.set_low_delivery("nonexistent", True)  # a gateway another sender knows: ignored


def test_a_gateway_at_its_ceiling_passes_items_to_the_next(router, clock) -> None:
    results = send(router, *(item(i, "902") for i in range(4)))
    assert [r.gateway for r in results] == ["gamma", "gamma", "beta", "beta"]
    clock.now += 1.0
    [refilled] = send(router, item(9, "902"))
    assert refilled.gateway == "gamma"


def test_a_route_of_gateways_all_at_their_ceiling_waits_for_a_token(posters, clock) -> None:
    gateways = {"solo": {"url": "http://127.0.0.1:1", "per_second": 1}}
    routing = parse_routing(json.dumps(gateways), "", "", "")
    solo = Poster(routing.gateways["solo"])
    router = GatewayRouter(routing, {"solo": solo}, POLICY, clock)
    send(router, item(1))

    async def later() -> DeliveryResult:
        task = asyncio.ensure_future(router.send(item(2)))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for the ceiling, not sent past it
        clock.now += 1.0
        return await task

    result = asyncio.run(later())
    assert result.gateway == "solo"
    assert solo.posted == [1, 2]


def sticky_router(posters, clock, wait_s: float) -> GatewayRouter:
    routing = parse_routing(json.dumps(GATEWAYS), json.dumps(ROUTES), "", "")
    return GatewayRouter(routing, posters, POLICY, clock, unsure_wait_s=wait_s)


def test_a_retry_after_an_unsure_failure_waits_for_its_gateway_not_another(posters, clock) -> None:
    router = sticky_router(posters, clock, wait_s=5.0)
    unsure = Reply(DeliveryResult(TRANSIENT, "timeout", unsure=True))
    posters["alpha"].answers = [unsure] * 4
    [first, *_] = send(router, *(item(i) for i in range(4)))  # alpha's circuit opens
    plan = plan_results([(item(1), first)], RetryPolicy((1_000,), 0), 0.0)
    [retry] = plan.retries[1_000]

    [held_back] = send(router, retry)
    beta_meanwhile = list(posters["beta"].posted)
    clock.now += 6.0  # alpha out (still open) longer than the wait: the route takes it after all
    [moved] = send(router, retry)

    assert retry.gateway == "alpha"
    assert held_back.kind == DEFERRED and beta_meanwhile == []
    assert moved.gateway == "beta" and moved.kind == SENT


def test_a_retry_goes_back_to_its_gateway_once_it_takes_trials(posters, clock) -> None:
    router = sticky_router(posters, clock, wait_s=600.0)
    posters["alpha"].answers = [Reply(DeliveryResult(TRANSIENT, "timeout", unsure=True))] * 4
    send(router, *(item(i) for i in range(4)))
    clock.now += POLICY.open_s

    [result] = send(
        router, DeliveryItem(1, "+7912", "Hi", 2, 4e9, operator_code="901", gateway="alpha")
    )

    assert (result.gateway, result.kind) == ("alpha", SENT)


@pytest.mark.parametrize(
    "reply",
    [Reply(transient("HTTP 503: busy")), Reply(transient("refused"), reached=False)],
)
def test_a_definite_failure_leaves_the_retry_free_to_fail_over(reply) -> None:
    plan = plan_results(
        [(item(1), replace(reply.result, gateway="alpha"))], RetryPolicy((1_000,), 0), 0.0
    )
    [retry] = plan.retries[1_000]
    assert retry.gateway is None


def test_a_ceiling_under_one_a_second_still_sends_and_then_defers(posters, clock) -> None:
    gateways = {"slow": {"url": "http://127.0.0.1:1", "per_second": 0.5}}
    routing = parse_routing(json.dumps(gateways), "", "", "")
    slow = Poster(routing.gateways["slow"])
    router = GatewayRouter(routing, {"slow": slow}, POLICY, clock)

    first, second = send(router, item(1), item(2))

    assert first.kind == SENT
    assert second.kind == DEFERRED and "ceiling" in (second.error or "")
    clock.now += 2.0
    assert send(router, item(3))[0].kind == SENT
