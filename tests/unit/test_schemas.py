"""Schema validation: time zones, windows, aware datetimes, time ranges, unknown fields, text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from marshmallow import ValidationError

from services.api.schemas.campaigns import (
    CampaignPatchSchema,
    CampaignQueryArgsSchema,
    CampaignSchema,
)
from services.api.schemas.clients import ClientPatchSchema, ClientQueryArgsSchema, ClientSchema
from services.api.schemas.common import PageArgsSchema
from services.api.schemas.preview_send import TestSendSchema
from services.scheduler.windows import zone_openings
from shared.domain.zones import ZONES

CAMPAIGN = {
    "name": "Spring sale",
    "channel": "http",
    "text": "Hi {{ first_name }}",
    "starts_at": "2030-03-01T09:00:00+03:00",
    "ends_at": "2030-03-02T09:00:00+03:00",
}


def errors_of(schema: Any, data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return caught.value.normalized_messages()


def test_client_defaults_and_normalisation() -> None:
    client = ClientSchema().load({"phone": "7 912 345 67 89", "tags": ["a", "b", "a"]})

    assert client == {
        "phone": "+79123456789",
        "operator_code": "912",
        "tags": ["a", "b"],
        "timezone": "UTC",
        "email": None,
        "attributes": {},
    }


def test_given_operator_code_wins() -> None:
    assert (
        ClientSchema().load({"phone": "+79123456789", "operator_code": "1"})["operator_code"] == "1"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "+1 555 0100"),
        ("phone", 79123456789),
        ("operator_code", "12345678x"),
        ("operator_code", "123456789"),
        ("tags", ["x" * 65]),
        ("tags", [""]),
        ("timezone", "localtime"),
        ("timezone", "posixrules"),
        ("timezone", "Factory"),
        ("timezone", "Mars/Olympus"),
        ("timezone", "../../etc/passwd"),
        ("email", "not-an-email"),
        ("attributes", {"nested": {"a": 1}}),
        ("attributes", {"list": [1]}),
        ("attributes", {"nul": "a\x00b"}),
        ("attributes", {"surrogate": "a\ud800b"}),
        ("attributes", {"\udc00": "x"}),
        ("tags", ["\ud800"]),
        ("email", "ann@ex\udfffample.com"),
        ("attributes", {"long": "x" * 1_001}),
        ("id", 5),
        ("created_at", "2030-01-01T00:00:00Z"),
        ("colour", "blue"),
    ],
)
def test_client_rejects_bad_fields(field: str, value: Any) -> None:
    data = {"phone": "+79123456789", field: value}
    assert field in errors_of(ClientSchema(), data)


def test_attribute_values_up_to_the_cap_are_kept() -> None:
    client = ClientSchema().load({"phone": "+79123456789", "attributes": {"a": "x" * 1_000}})

    assert client["attributes"] == {"a": "x" * 1_000}


def test_the_spec_states_no_nul_unless_a_pattern_or_enum_already_says_more() -> None:
    fields = ClientSchema().fields

    assert fields["phone"].metadata["pattern"] == "^[^\\x00]*$"
    assert "pattern" not in fields["operator_code"].metadata
    assert "pattern" not in fields["timezone"].metadata


@pytest.mark.parametrize(
    ("schema", "args", "field"),
    [
        (ClientQueryArgsSchema(), {"tag": "\ud800"}, "tag"),
        (ClientQueryArgsSchema(), {"tag": "a\x00"}, "tag"),
        (CampaignQueryArgsSchema(), {"channel": "\udfff"}, "channel"),
        (TestSendSchema(), {"address": "ann@ex\udc00ample.com"}, "address"),
    ],
)
def test_query_and_test_send_strings_must_be_storable(
    schema: Any, args: dict[str, str], field: str
) -> None:
    assert field in errors_of(schema, args)


def test_timezone_allow_list_is_host_independent() -> None:
    assert "Europe/Moscow" in ZONES and "UTC" in ZONES
    assert not {"localtime", "posixrules", "Factory"} & set(ZONES)
    assert len(ZONES) > 500


def test_a_client_may_have_exactly_the_zones_of_the_one_list() -> None:
    field = ClientSchema().fields["timezone"]
    (one_of,) = [v for v in field.validators if hasattr(v, "choices")]

    assert tuple(one_of.choices) == ZONES


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posixrules", "Mars/Olympus_Mons"])
def test_a_name_off_the_list_is_refused_by_the_api_and_skipped_by_the_scheduler(
    zone: str,
) -> None:
    now = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)

    openings, _ = zone_openings(now, (dt.time(9), dt.time(21)))

    assert "timezone" in errors_of(ClientSchema(), {"phone": "+79123456789", "timezone": zone})
    assert zone not in openings and set(openings) == set(ZONES)


def test_patch_needs_no_phone_and_applies_no_defaults() -> None:
    assert ClientPatchSchema().load({"tags": ["vip"]}) == {"tags": ["vip"]}


def test_campaign_maps_filter_and_window_onto_columns() -> None:
    data = {
        **CAMPAIGN,
        "filter": {"tags": ["vip"]},
        "send_window": {"start": "22:00", "end": "06:00"},
    }

    campaign = CampaignSchema().load(data)

    assert campaign["filter_tags"] == ["vip"]
    assert campaign["filter_operator_codes"] == []
    assert (campaign["window_start"], campaign["window_end"]) == (dt.time(22), dt.time(6))
    assert campaign["starts_at"].utcoffset() == dt.timedelta(hours=3)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"starts_at": "2030-03-01T09:00:00"}, "starts_at"),
        ({"ends_at": "2030-03-01"}, "ends_at"),
        ({"ends_at": "2030-03-01T08:00:00+03:00"}, "ends_at"),
        ({"ends_at": "2030-03-01T09:00:00+03:00"}, "ends_at"),
        ({"send_window": {"start": "09:00", "end": "09:00"}}, "send_window"),
        ({"send_window": {"start": "9:00", "end": "21:00"}}, "send_window"),
        ({"send_window": {"start": "09:00"}}, "send_window"),
        ({"channel": "sms"}, "channel"),
        ({"channel": "email"}, "subject"),
        ({"text": ""}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "Hi {{ name"}, "text"),
        ({"text": "Hi\x00"}, "text"),
        ({"text": "Hi \udfff"}, "text"),
        ({"name": "\ud800"}, "name"),
        ({"filter": {"tags": ["\udbff"]}}, "filter"),
        ({"name": "n" * 201}, "name"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": "fast"}, "rate_limit"),
        ({"filter": {"operator_codes": ["abc"]}}, "filter"),
        ({"filter": {"colour": "red"}}, "filter"),
        ({"status": "running"}, "status"),
        ({"priority": 1}, "priority"),
    ],
)
def test_campaign_rejects(changes: dict[str, Any], field: str) -> None:
    assert field in errors_of(CampaignSchema(), {**CAMPAIGN, **changes})


def test_campaign_patch_accepts_any_subset() -> None:
    assert CampaignPatchSchema().load({"rate_limit": 50}) == {"rate_limit": 50}
    assert CampaignPatchSchema().load({"send_window": None}) == {
        "window_start": None,
        "window_end": None,
    }


def test_campaign_dump_nests_columns_back() -> None:
    row = {
        "id": 1,
        "filter_tags": ["vip"],
        "filter_operator_codes": ["912"],
        "window_start": dt.time(9),
        "window_end": dt.time(21, 30),
        "status": "scheduled",
    }

    dumped = CampaignSchema().dump(row)

    assert dumped["filter"] == {"tags": ["vip"], "operator_codes": ["912"]}
    assert dumped["send_window"] == {"start": "09:00", "end": "21:30"}


@pytest.mark.parametrize("args", [{"limit": "0"}, {"limit": "1001"}, {"after": "-1"}])
def test_page_args_are_bounded(args: dict[str, str]) -> None:
    assert errors_of(PageArgsSchema(), args)


def test_page_args_default() -> None:
    assert PageArgsSchema().load({}) == {"limit": 100, "after": None}
