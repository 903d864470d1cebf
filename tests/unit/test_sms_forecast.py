"""The SMS forecast over an audience's groups: encodings, routes, cost, the segment limit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from services.api.core.sms_forecast import forecast
from shared.db.queries.audience_texts import TextGroup

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Route:
    name: str
    price_per_segment: Decimal | None


PRICES = {"901": Route("operator 901", Decimal("0.05"))}
DEFAULT = Route("default", Decimal("0.02"))


def route_for(operator_code: str | None, phone: str | None) -> Route:
    if phone is not None and phone.startswith("+7912"):
        return Route("prefix 7912", None)
    return PRICES.get(operator_code or "", DEFAULT)


def group(
    recipients: int, code: str | None = "900", prefix: str | None = "+3361", **values: object
) -> TextGroup:
    return TextGroup(values, code, prefix, recipients)


def test_counts_messages_by_encoding_and_segments_by_rendered_text() -> None:
    groups = [group(3, name="Ann"), group(2, name="Жанна"), group(1, name="a" * 160)]
    result = forecast("Hi {{name}}", groups, route_for, 10).as_json()
    assert result["messages"] == {"GSM-7": 4, "UCS-2": 2}
    # 3 x 1 + 2 x 1 + 1 x 2 (163 septets)
    assert result["segments"] == 7
    assert result["forced_ucs2_by"] == "Ж"
    assert result["max_segments"] == 10


def test_costs_per_route_and_in_total() -> None:
    groups = [group(10, code="901", name="x"), group(5, code="900", name="x" * 200)]
    result = forecast("{{name}}", groups, route_for, 10).as_json()
    assert result["routes"] == [
        {"route": "default", "messages": 5, "segments": 10, "cost": "0.20"},
        {"route": "operator 901", "messages": 10, "segments": 10, "cost": "0.50"},
    ]
    assert result["cost"] == "0.70"


def test_total_cost_is_unknown_when_a_route_with_recipients_has_no_price() -> None:
    groups = [group(4, prefix="+7912"), group(1)]
    result = forecast("Hello", groups, route_for, 10).as_json()
    assert {r["route"]: r["cost"] for r in result["routes"]} == {
        "default": "0.02",
        "prefix 7912": None,
    }
    assert result["cost"] is None


def test_an_empty_audience_costs_nothing() -> None:
    result = forecast("Hello", [], route_for, 10).as_json()
    assert result["messages"] == {"GSM-7": 0, "UCS-2": 0}
    assert (result["segments"], result["routes"], result["cost"]) == (0, [], "0")


def test_a_missing_value_renders_empty() -> None:
    result = forecast("{{name}}" + "a" * 158, [group(1)], route_for, 10).as_json()
    assert result["segments"] == 1


def test_no_group_over_the_limit_means_no_refusal() -> None:
    assert forecast("a" * 1530, [group(9)], route_for, 10).over_limit is None


def test_groups_over_the_limit_are_named_with_their_count_and_encoding() -> None:
    groups = [group(40, name="Ж" * 700), group(2, name="ok"), group(1, name="Ж" * 740)]
    over = forecast("{{name}}", groups, route_for, 10).over_limit
    assert over is not None
    assert over.recipients == 41
    assert over.reason(10) == (
        "renders to 11 to 12 segments for 41 recipients (UCS-2, forced by 'Ж'); at most 10"
    )


def test_a_single_count_over_the_limit_reads_plainly() -> None:
    over = forecast("€" * 800, [group(1)], route_for, 10).over_limit
    assert over is not None
    assert over.reason(10) == "renders to 11 segments for 1 recipient (GSM-7); at most 10"
