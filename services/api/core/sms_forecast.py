"""What a text costs in SMS segments over an audience: by encoding, by route, in money.

Pure arithmetic over the audience's groups (recipients who render the same text and take the
same route), so a campaign of millions is counted in as many renders as it has groups.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from shared.db.queries.audience_texts import TextGroup
from shared.domain.segments import GSM7, UCS2, SmsParts, count_segments, limit_reason_for
from shared.domain.templates import render

# The channel whose texts are SMS.
SMS_CHANNEL = "http"
# The limit applied when the caller gives none of its own (HERALD_SMS_MAX_SEGMENTS).


class PricedRoute(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def price_per_segment(self) -> Decimal | None: ...


# (operator_code, phone or its leading digits) -> the route it takes
RouteFor = Callable[[str | None, str | None], PricedRoute]


@dataclass(slots=True)
class RouteTotal:
    messages: int = 0
    segments: int = 0
    price_per_segment: Decimal | None = None

    @property
    def cost(self) -> Decimal | None:
        if self.price_per_segment is None:
            return None
        return self.price_per_segment * self.segments


@dataclass(frozen=True, slots=True)
class OverLimit:
    """Recipients whose text would take more parts than allowed, and the worst of them."""

    recipients: int
    fewest: int
    most: int
    worst: SmsParts

    def reason(self, limit: int) -> str:
        count = str(self.most) if self.fewest == self.most else f"{self.fewest} to {self.most}"
        return limit_reason_for(count, self.worst, limit, self.recipients)


@dataclass(slots=True)
class SmsForecast:
    max_segments: int
    messages: Counter[str] = field(default_factory=Counter)
    routes: dict[str, RouteTotal] = field(default_factory=dict)
    forcing: Counter[str] = field(default_factory=Counter)
    over: list[tuple[int, SmsParts]] = field(default_factory=list)

    @property
    def segments(self) -> int:
        return sum(route.segments for route in self.routes.values())

    @property
    def cost(self) -> Decimal | None:
        """The sum over routes; unknown as soon as one route with recipients has no price."""
        costs = [route.cost for route in self.routes.values() if route.messages]
        if any(cost is None for cost in costs):
            return None
        return sum((cost for cost in costs if cost is not None), Decimal(0))

    @property
    def over_limit(self) -> OverLimit | None:
        if not self.over:
            return None
        counts = [parts.segments for _, parts in self.over]
        worst = max(self.over, key=lambda item: (item[1].segments, item[0]))[1]
        return OverLimit(sum(n for n, _ in self.over), min(counts), max(counts), worst)

    def as_json(self) -> dict[str, Any]:
        """The preview's `sms` object: decimals as strings, null where a price is missing."""
        return {
            "messages": {GSM7: self.messages[GSM7], UCS2: self.messages[UCS2]},
            "segments": self.segments,
            "max_segments": self.max_segments,
            "forced_ucs2_by": min(self.forcing, key=lambda c: (-self.forcing[c], c))
            if self.forcing
            else None,
            "routes": [
                {
                    "route": name,
                    "messages": route.messages,
                    "segments": route.segments,
                    "cost": money(route.cost),
                }
                for name, route in sorted(self.routes.items())
            ],
            "cost": money(self.cost),
        }


def forecast(
    template: str, groups: Iterable[TextGroup], route_for: RouteFor, max_segments: int
) -> SmsForecast:
    """Render `template` once per group and add its segments up by encoding and route."""
    result = SmsForecast(max_segments)
    for group in groups:
        parts = count_segments(render(template, group.values))
        n = group.recipients
        result.messages[parts.encoding] += n
        if parts.forced_by is not None:
            result.forcing[parts.forced_by] += n
        route = route_for(group.operator_code, group.phone_prefix)
        total = result.routes.setdefault(route.name, RouteTotal())
        total.messages += n
        total.segments += n * parts.segments
        total.price_per_segment = route.price_per_segment
        if parts.segments > max_segments:
            result.over.append((n, parts))
    return result


def money(amount: Decimal | None) -> str | None:
    """A decimal as plain digits (never an exponent), or None."""
    return None if amount is None else format(amount, "f")
