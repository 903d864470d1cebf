"""Gateways and routes: which HTTP gateways take a recipient's SMS, in order of preference.

HERALD_GATEWAYS is a JSON object of named gateways:

    {"alpha": {"url": "https://sms.example/api", "token": "...", "per_second": 200,
               "price_per_segment": "0.0035", "throttle_codes": [42]}, "beta": {...}}

HERALD_ROUTES maps operator codes and phone prefixes (digits of the E.164 number) to ordered
lists of gateway names, with a default route:

    {"operators": {"901": ["beta", "alpha"]}, "prefixes": {"4477": ["gamma"]},
     "default": ["alpha", "beta"]}

An operator code wins over a prefix; a recipient matched by neither takes the default route
(every gateway in the order declared, when HERALD_ROUTES names none). Without HERALD_GATEWAYS
there is one gateway, "default", from HERALD_GATEWAY_URL and HERALD_GATEWAY_TOKEN.

Everything that cannot be used is refused when read, naming the variable and the value:
a route to an unknown gateway, a price or ceiling that is not a number, prefixes of which one
begins another (which would route by declaration order, silently).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

GATEWAYS = "HERALD_GATEWAYS"
ROUTES = "HERALD_ROUTES"
DEFAULT_GATEWAY = "default"
DEFAULT_ROUTE = "default"
GATEWAY_NAME_CHARS = 64  # message.gateway holds the name
GATEWAY_OPTIONS = ("url", "token", "per_second", "price_per_segment", "throttle_codes")
ROUTE_KEYS = ("operators", "prefixes", "default")


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    url: str
    token: str = field(default="", repr=False)
    per_second: float | None = None  # the most this gateway takes, per sender process
    price_per_segment: Decimal | None = None
    # Reply codes ({"code": n} in the body) that mean "throttled": retried after Retry-After.
    throttle_codes: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # "default", "operator 901", "prefix 4477"
    gateways: tuple[str, ...]  # in order of preference
    price_per_segment: Decimal | None = None  # its first gateway's


@dataclass(frozen=True, slots=True)
class Routing:
    gateways: Mapping[str, Gateway]
    default: Route
    by_operator: Mapping[str, Route] = field(default_factory=dict)
    by_prefix: Mapping[str, Route] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()  # of by_prefix, shortest first: read once per message

    @property
    def longest_prefix(self) -> int:
        """How many leading phone digits route selection reads (0: none)."""
        return max(self.prefix_lengths, default=0)

    @property
    def routes(self) -> tuple[Route, ...]:
        return (*self.by_operator.values(), *self.by_prefix.values(), self.default)

    def route_for(self, operator_code: str | None, phone: str | None) -> Route:
        """The route of a recipient: by its operator code, else its phone's prefix, else default."""
        if operator_code is not None:
            route = self.by_operator.get(operator_code)
            if route is not None:
                return route
        if phone and self.by_prefix:
            digits = "".join(ch for ch in phone if ch.isdigit())
            for length in self.prefix_lengths:
                route = self.by_prefix.get(digits[:length])
                if route is not None:
                    return route
        return self.default


def single_gateway(url: str, token: str) -> Routing:
    """The routing of a deployment with one gateway."""
    gateway = Gateway(DEFAULT_GATEWAY, url.rstrip("/"), token)
    return Routing({gateway.name: gateway}, Route(DEFAULT_ROUTE, (gateway.name,)))


def parse_routing(gateways_json: str, routes_json: str, url: str, token: str) -> Routing:
    """Read HERALD_GATEWAYS and HERALD_ROUTES; ValueError names the variable and the value."""
    if not gateways_json.strip():
        if routes_json.strip():
            raise ValueError(f"{ROUTES} needs {GATEWAYS} to name the gateways it routes to")
        return single_gateway(url, token)
    gateways = {
        name: _gateway(name, spec)
        for name, spec in _object(_load(gateways_json, GATEWAYS), GATEWAYS).items()
    }
    if not gateways:
        raise ValueError(f"{GATEWAYS} names no gateway: {gateways_json!r}")
    spec = _object(_load(routes_json, ROUTES), ROUTES) if routes_json.strip() else {}
    unknown = sorted(set(spec) - set(ROUTE_KEYS))
    if unknown:
        raise ValueError(f"{ROUTES} has {unknown[0]!r}; its keys are {', '.join(ROUTE_KEYS)}")

    def route(name: str, value: Any, where: str) -> Route:
        names = _gateway_list(value, where, gateways)
        return Route(name, names, gateways[names[0]].price_per_segment)

    default = (
        route(DEFAULT_ROUTE, spec["default"], "default")
        if "default" in spec
        else route(DEFAULT_ROUTE, list(gateways), "default")
    )
    by_operator = {
        code: route(f"operator {code}", value, f"operators.{code}")
        for code, value in _object(spec.get("operators", {}), f"{ROUTES} operators").items()
    }
    prefixes = _object(spec.get("prefixes", {}), f"{ROUTES} prefixes")
    for prefix in prefixes:
        if not prefix.isascii() or not prefix.isdigit():
            raise ValueError(f"{ROUTES} prefixes are digits of the phone number, not {prefix!r}")
    _refuse_overlaps(list(prefixes))
    by_prefix = {
        prefix: route(f"prefix {prefix}", value, f"prefixes.{prefix}")
        for prefix, value in prefixes.items()
    }
    lengths = tuple(sorted({len(p) for p in by_prefix}))
    return Routing(gateways, default, by_operator, by_prefix, lengths)


def _load(text: str, variable: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ValueError(f"{variable} names {key!r} twice")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        # The position, never the text: it holds the gateways' tokens.
        raise ValueError(
            f"{variable} must be a JSON object: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        # Its type, not its value: a misplaced value may be a token.
        raise ValueError(f"{where} must be a JSON object, not a JSON {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _gateway(name: str, spec: Any) -> Gateway:
    where = f"{GATEWAYS} gateway {name!r}"
    if not name or len(name) > GATEWAY_NAME_CHARS or not name.isprintable():
        raise ValueError(f"{GATEWAYS} gateway names are 1 to {GATEWAY_NAME_CHARS} characters")
    spec = _object(spec, where)
    unknown = sorted(set(spec) - set(GATEWAY_OPTIONS))
    if unknown:
        raise ValueError(f"{where} has {unknown[0]!r}; options: {', '.join(GATEWAY_OPTIONS)}")
    url = spec.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where} needs a url, http(s)://host[:port], not {json.dumps(url)}")
    token = spec.get("token", "")
    if not isinstance(token, str):
        raise ValueError(f"{where} token must be a string, not a JSON {_json_type(token)}")
    per_second = spec.get("per_second")
    if per_second is not None and not _is_positive(per_second):
        raise ValueError(
            f"{where} per_second must be a number above zero, not {json.dumps(per_second)}"
        )
    codes = spec.get("throttle_codes", [])
    if not isinstance(codes, list) or not all(type(c) is int for c in codes):
        raise ValueError(f"{where} throttle_codes must be a list of integers, not {codes!r}")
    return Gateway(
        name,
        url.rstrip("/"),
        token,
        float(per_second) if per_second is not None else None,
        _price(spec.get("price_per_segment"), where),
        frozenset(codes),
    )


def _is_positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _price(value: Any, where: str) -> Decimal | None:
    """A price is a decimal string or a number, not below zero: "0.0035" or 0.0035."""
    if value is None:
        return None
    refused = ValueError(
        f"{where} price_per_segment must be a number not below zero, not {json.dumps(value)}"
    )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise refused
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise refused from None
    if not price.is_finite() or price < 0:
        raise refused
    return price


def _gateway_list(value: Any, where: str, gateways: Mapping[str, Gateway]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(n, str) for n in value):
        raise ValueError(
            f"{ROUTES} {where} must be a non-empty list of gateway names, not {json.dumps(value)}"
        )
    for name in value:
        if name not in gateways:
            raise ValueError(
                f"{ROUTES} {where} routes to unknown gateway {name!r}; "
                f"{GATEWAYS} names {', '.join(sorted(gateways))}"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{ROUTES} {where} names a gateway twice: {json.dumps(value)}")
    return tuple(value)


def _refuse_overlaps(prefixes: Sequence[str]) -> None:
    ordered = sorted(prefixes)
    # Sorted, a prefix that begins another sits right before the first one it begins.
    for shorter, longer in zip(ordered, ordered[1:], strict=False):
        if longer.startswith(shorter):
            raise ValueError(
                f"{ROUTES} prefixes overlap: {shorter!r} begins {longer!r}; "
                "a number could take either route"
            )
