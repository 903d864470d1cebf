"""Routes: a recipient's gateways by operator code, then phone prefix, then the default route;
configuration that cannot be used is refused at start, naming the variable and the value."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from shared.config import ConfigError, Settings, service_settings
from shared.domain.routes import parse_routing

NO_FILE = Path("/nonexistent")
GATEWAYS = {
    "alpha": {"url": "http://127.0.0.1:8901/", "token": "a", "price_per_segment": "0.004"},
    "beta": {"url": "http://127.0.0.1:8902", "token": "b", "per_second": 50},
    "gamma": {"url": "https://gamma.example", "price_per_segment": 0.01, "throttle_codes": [42]},
}
ROUTES = {
    "operators": {"901": ["beta", "alpha"]},
    "prefixes": {"4477": ["gamma", "alpha"], "7912": ["beta"]},
    "default": ["alpha", "beta"],
}


def routing(gateways: object = GATEWAYS, routes: object = ROUTES) -> object:
    return parse_routing(json.dumps(gateways), json.dumps(routes), "", "")


def test_a_recipient_is_routed_by_operator_code_first_then_prefix_then_default() -> None:
    found = parse_routing(json.dumps(GATEWAYS), json.dumps(ROUTES), "", "")
    assert found.route_for("901", "+447700900123").gateways == ("beta", "alpha")
    assert found.route_for("902", "+44 7700 900123").name == "prefix 4477"
    assert found.route_for(None, "+79120000000").gateways == ("beta",)
    assert found.route_for("902", "+15550100").name == "default"
    assert found.route_for(None, None).gateways == ("alpha", "beta")
    assert found.longest_prefix == 4


def test_a_route_costs_what_its_first_gateway_charges_per_segment() -> None:
    found = parse_routing(json.dumps(GATEWAYS), json.dumps(ROUTES), "", "")
    assert found.route_for("901", None).price_per_segment is None
    assert found.route_for(None, "4477").price_per_segment == Decimal("0.01")
    assert found.default.price_per_segment == Decimal("0.004")
    assert found.gateways["alpha"].url == "http://127.0.0.1:8901"
    assert found.gateways["gamma"].throttle_codes == frozenset({42})
    assert found.gateways["beta"].per_second == 50.0


def test_without_routes_every_gateway_in_declared_order_is_the_default() -> None:
    found = parse_routing(json.dumps(GATEWAYS), "", "", "")
    assert found.default.gateways == ("alpha", "beta", "gamma")
    assert found.longest_prefix == 0


def test_without_gateways_the_single_gateway_settings_make_one() -> None:
    settings = Settings.from_env(
        {"HERALD_GATEWAY_URL": "http://127.0.0.1:9999/", "HERALD_GATEWAY_TOKEN": "t"}, NO_FILE
    )
    assert list(settings.routing.gateways) == ["default"]
    assert settings.routing.gateways["default"].url == "http://127.0.0.1:9999"
    assert settings.routing.default.gateways == ("default",)


@pytest.mark.parametrize(
    ("gateways", "routes", "expected"),
    [
        (GATEWAYS, {"default": ["alpha", "delta"]}, "routes to unknown gateway 'delta'"),
        (GATEWAYS, {"operators": {"901": ["zeta"]}}, "operators.901 routes to unknown gateway"),
        (
            {"alpha": {"url": "http://127.0.0.1:1", "price_per_segment": "cheap"}},
            {},
            "gateway 'alpha' price_per_segment must be a number not below zero, not \"cheap\"",
        ),
        (
            {"alpha": {"url": "http://127.0.0.1:1", "price_per_segment": -1}},
            {},
            "price_per_segment must be a number not below zero, not -1",
        ),
        (
            {"alpha": {"url": "http://127.0.0.1:1", "per_second": "fast"}},
            {},
            "per_second must be a number above zero",
        ),
        (GATEWAYS, {"prefixes": {"44": ["alpha"], "4477": ["beta"]}}, "'44' begins '4477'"),
        (GATEWAYS, {"prefixes": {"+44": ["alpha"]}}, "prefixes are digits"),
        (GATEWAYS, {"default": []}, "default must be a non-empty list of gateway names"),
        (GATEWAYS, {"default": ["alpha", "alpha"]}, "names a gateway twice"),
        (GATEWAYS, {"fallback": ["alpha"]}, "has 'fallback'; its keys are"),
        ({"alpha": {"url": "127.0.0.1:8900"}}, {}, "needs a url"),
        ({"alpha": {"url": "http://127.0.0.1:1", "tokn": "x"}}, {}, "has 'tokn'; options"),
        ({}, {}, "names no gateway"),
        ([], {}, "must be a JSON object, not a JSON array"),
        ({"alpha": "secret-token"}, {}, "gateway 'alpha' must be a JSON object, not a JSON string"),
    ],
)
def test_unusable_routing_is_refused_naming_variable_and_value(
    gateways: object, routes: object, expected: str
) -> None:
    with pytest.raises(ValueError, match="HERALD_(GATEWAYS|ROUTES)") as caught:
        routing(gateways, routes)
    assert expected in str(caught.value)


def test_a_gateway_named_twice_is_refused() -> None:
    text = '{"alpha": {"url": "http://127.0.0.1:1"}, "alpha": {"url": "http://127.0.0.1:2"}}'
    with pytest.raises(ValueError, match="HERALD_GATEWAYS names 'alpha' twice"):
        parse_routing(text, "", "", "")


def test_routes_without_gateways_are_refused() -> None:
    with pytest.raises(ValueError, match="HERALD_ROUTES needs HERALD_GATEWAYS"):
        parse_routing("", '{"default": ["alpha"]}', "http://127.0.0.1:1", "")


def test_a_service_stops_at_start_on_bad_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_GATEWAYS", json.dumps(GATEWAYS))
    monkeypatch.setenv("HERALD_ROUTES", '{"default": ["omega"]}')
    with pytest.raises(SystemExit, match="herald sender: configuration error: HERALD_ROUTES"):
        service_settings("sender")


def test_broken_json_is_refused_with_the_variable() -> None:
    with pytest.raises(ConfigError, match="HERALD_GATEWAYS must be a JSON object"):
        Settings.from_env({"HERALD_GATEWAYS": "{alpha"}, NO_FILE)


@pytest.mark.parametrize("value", ["0", "ten"])
def test_sms_max_segments_must_be_a_positive_integer(value: str) -> None:
    with pytest.raises(ConfigError, match="HERALD_SMS_MAX_SEGMENTS must be an integer"):
        Settings.from_env({"HERALD_SMS_MAX_SEGMENTS": value}, NO_FILE)


@pytest.mark.parametrize(
    "text",
    [
        '{"alpha": {"url": "http://127.0.0.1:1", "token": "s3cr3t-t0ken"},}',
        '{"alpha": {"url": "http://127.0.0.1:1", "token": ["s3cr3t-t0ken"]}}',
        '{"alpha": "s3cr3t-t0ken"}',
    ],
)
def test_a_refusal_never_repeats_a_token(text: str) -> None:
    with pytest.raises(ValueError, match="HERALD_GATEWAYS") as caught:
        parse_routing(text, "", "", "")
    assert "s3cr3t" not in str(caught.value)
