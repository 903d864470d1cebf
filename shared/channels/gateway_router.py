"""GatewayRouter: the SMS channel's messenger over several gateways, by route, with failover.

Each item takes its route (by operator code, phone prefix, or the default) and goes to the
first gateway of that route that is fit to take it: its circuit closed (or letting trials
through), its receipts not under HERALD_GATEWAY_MIN_DELIVERY_SHARE, under its per-second
ceiling. A gateway passed over loses the item to the next one at once, and a gateway whose
connection is refused (nothing was sent) too, in the same attempt. Any other failure is an
ordinary transient result: the retry comes back through the delay tiers and routes again, so
an item that might have reached a gateway is not handed to a second one while the first may
still answer for it.

Used on the dispatcher's event loop only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from shared import metrics
from shared.domain.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from shared.domain.deliveries import DeliveryItem
from shared.domain.outcomes import DeliveryResult, deferred
from shared.domain.routes import Gateway, Route, Routing
from shared.domain.segments import segment_count
from shared.domain.throttle import capacity

log = logging.getLogger(__name__)

CHANNEL = "http"
CEILING_WAIT_CAP_S = 1.0  # an item waits at most this long for a ceiling's token, then defers
DEFAULT_UNSURE_WAIT_S = 300.0


class Reply(Protocol):
    @property
    def result(self) -> DeliveryResult: ...
    @property
    def reached(self) -> bool: ...


class GatewayPoster(Protocol):
    gateway: Gateway

    async def post(self, item: DeliveryItem) -> Reply: ...
    async def close(self) -> None: ...


class Ceiling:
    """A per-second token bucket holding at least one token; None rate: no ceiling."""

    def __init__(self, per_second: float | None, clock: Callable[[], float]) -> None:
        self._rate = per_second
        self._clock = clock
        # As the scheduler's buckets: a rate under one a second still lets one message out.
        self._capacity = capacity(per_second) if per_second else 0.0
        self._tokens = self._capacity
        self._at = clock()

    def wait_s(self) -> float:
        """0.0 when a token is there to take, else the seconds until there is one."""
        if self._rate is None:
            return 0.0
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    def take(self) -> None:
        if self._rate is not None:
            self._tokens -= 1.0


class GatewayHealth:
    """One gateway's fitness: its breaker, its receipts' verdict, its ceiling; logs changes."""

    def __init__(self, gateway: Gateway, policy: BreakerPolicy, clock: Callable[[], float]) -> None:
        self.gateway = gateway
        self.low_delivery = False
        self.ceiling = Ceiling(gateway.per_second, clock)
        self.opened_at: float | None = None  # while its circuit is not closed
        self._breaker = CircuitBreaker(policy)
        self._clock = clock
        self._open_gauge = metrics.SENDER_GATEWAY_CIRCUIT_OPEN.labels(gateway.name)
        self._opened = metrics.SENDER_GATEWAY_CIRCUIT_OPENED.labels(gateway.name)
        self._low_gauge = metrics.SENDER_GATEWAY_LOW_DELIVERY.labels(gateway.name)
        self._failovers = metrics.SENDER_GATEWAY_FAILOVERS.labels(gateway.name)
        self._segments = metrics.SENDER_GATEWAY_SEGMENTS.labels(gateway.name)
        self._outcomes = {
            kind: metrics.SENDER_GATEWAY_DELIVERIES.labels(gateway.name, kind)
            for kind in ("sent", "transient", "permanent")
        }
        self._open_gauge.set(0)
        self._low_gauge.set(0)

    @property
    def state(self) -> str:
        return str(self._breaker.state)

    def allow(self) -> int | None:
        return self._breaker.allow(self._clock())

    def record(self, permit: int, result: DeliveryResult) -> None:
        counter = self._outcomes.get(result.kind)
        if counter is not None:
            counter.inc()
        if result.segments:
            self._segments.inc(result.segments)
        transition = self._breaker.record(permit, result.is_transient, self._clock())
        if transition is None:
            return
        name = self.gateway.name
        if transition.state is BreakerState.OPEN:
            if self.opened_at is None:
                self.opened_at = self._clock()
            self._open_gauge.set(1)
            self._opened.inc()
            log.warning(
                "gateway %s circuit opened: %s (last: %s); its routes go to their next "
                "gateway for %.1fs, then it gets trials",
                name,
                transition.cause,
                result.error,
                self._breaker.policy.open_s,
            )
        elif transition.state is BreakerState.CLOSED:
            self.opened_at = None
            self._open_gauge.set(0)
            log.warning("gateway %s circuit closed: it takes its routes' traffic again", name)

    def set_low_delivery(self, is_low: bool, share: float | None = None) -> None:
        if is_low == self.low_delivery:
            return
        self.low_delivery = is_low
        self._low_gauge.set(int(is_low))
        if is_low:
            log.warning(
                "gateway %s delivers %s of what it accepts by its receipts: its routes go to "
                "their next gateway until it recovers",
                self.gateway.name,
                "an unknown share" if share is None else f"{share:.0%}",
            )
        else:
            log.warning(
                "gateway %s delivers again by its receipts: it takes traffic", self.gateway.name
            )

    def passed_over(self) -> None:
        self._failovers.inc()

    def out_for(self) -> float:
        """Seconds its circuit has been open (or trying), 0 while closed."""
        return 0.0 if self.opened_at is None else self._clock() - self.opened_at


class GatewayRouter:
    """The "http" channel's AsyncMessenger: one item, its route, the first fit gateway."""

    channel = CHANNEL
    # Each gateway has its circuit breaker here: the dispatcher's channel-wide one stands aside.
    judges_its_gateways = True

    def __init__(
        self,
        routing: Routing,
        posters: Mapping[str, GatewayPoster],
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
        unsure_wait_s: float = DEFAULT_UNSURE_WAIT_S,
    ) -> None:
        self._routing = routing
        self._posters = dict(posters)
        self._unsure_wait_s = unsure_wait_s
        self._moved_unsure = metrics.SENDER_GATEWAY_UNSURE_MOVES
        self._health = {
            name: GatewayHealth(p.gateway, policy, clock) for name, p in posters.items()
        }

    @property
    def gateway_names(self) -> tuple[str, ...]:
        return tuple(self._health)

    def gateway_states(self) -> dict[str, str]:
        """Each gateway's breaker state; a snapshot readable from any thread."""
        return {name: health.state for name, health in self._health.items()}

    def set_low_delivery(self, gateway: str, is_low: bool, share: float | None = None) -> None:
        """Receipts say a gateway delivers too little (or enough again); unknown names: none."""
        health = self._health.get(gateway)
        if health is not None:
            health.set_low_delivery(is_low, share)

    async def send(self, item: DeliveryItem) -> DeliveryResult:
        route = self._routing.route_for(item.operator_code, item.address)
        gateways = self._gateways_for(route, item)
        waited = 0.0
        while True:
            result, wait_s = await self._try(route, gateways, item)
            if result is not None:
                return result
            if waited >= CEILING_WAIT_CAP_S:
                # Back through the shortest delay tier, where waiting costs nothing.
                return deferred(f"not sent: every gateway of route {route.name} is at its ceiling")
            # Every fit gateway is at its ceiling: wait for the first token, then try again.
            pause = min(wait_s, CEILING_WAIT_CAP_S - waited)
            await asyncio.sleep(pause)
            waited += pause

    def _gateways_for(self, route: Route, item: DeliveryItem) -> list[str]:
        """The gateways to try, in order.

        An item an unsure failure left with a gateway stays with it: only there does its
        idempotency key absorb a repeat. Once that gateway has been out for longer than
        `unsure_wait_s` the item takes its route after all, and is counted: it may be sent
        twice rather than not at all.
        """
        sticky = self._health.get(item.gateway) if item.gateway else None
        if sticky is not None:
            if sticky.out_for() < self._unsure_wait_s:
                # Its breaker decides: held back while open, a trial when it tries again.
                return [sticky.gateway.name]
            self._moved_unsure.inc()
        healthy = [n for n in route.gateways if not self._health[n].low_delivery]
        # Gateways with low delivery still take the route's traffic when no other can.
        return healthy + [n for n in route.gateways if n not in healthy]

    async def _try(
        self, route: Route, ordered: list[str], item: DeliveryItem
    ) -> tuple[DeliveryResult | None, float]:
        """The result from the first gateway that took the item, else what stopped them all.

        (None, seconds) when fit gateways were only at their ceilings.
        """
        refused: DeliveryResult | None = None
        wait_s = float("inf")
        for index, name in enumerate(ordered):
            health = self._health[name]
            behind = health.ceiling.wait_s()
            if behind > 0:
                wait_s = min(wait_s, behind)
                self._note_pass(health, index, ordered)
                continue
            permit = health.allow()
            if permit is None:
                self._note_pass(health, index, ordered)
                continue
            health.ceiling.take()
            reply = await self._posters[name].post(item)
            result = replace(
                reply.result,
                gateway=name,
                segments=segment_count(item.text) if reply.result.is_sent else None,
            )
            health.record(permit, result)
            if reply.reached:
                return result, 0.0
            refused = result
            self._note_pass(health, index, ordered)
        if refused is not None:
            return refused, 0.0
        if wait_s != float("inf"):
            return None, wait_s
        return deferred(f"not sent: every gateway of route {route.name} is held back"), 0.0

    @staticmethod
    def _note_pass(health: GatewayHealth, index: int, ordered: list[str]) -> None:
        if index + 1 < len(ordered):
            health.passed_over()

    async def close(self) -> None:
        for poster in self._posters.values():
            await poster.close()
