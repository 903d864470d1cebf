"""POST /campaigns/preview: audience, who is left out and why, in window now, forecast."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, text

from services.api.app import create_app
from shared.config import ChannelLimits, Settings
from shared.domain.routes import parse_routing
from tests.conftest import WRITE_TOKEN
from tests.support.factories import make_clients

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
PATH = "/api/v1/campaigns/preview"


def body(**fields: Any) -> dict[str, Any]:
    ends_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    return {"name": "p", "channel": "http", "text": "Hi", "ends_at": ends_at.isoformat(), **fields}


def clock(at: dt.datetime) -> str:
    return at.strftime("%H:00")


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


@pytest.fixture
def audience(engine: Engine) -> None:
    """10 'news' clients: 4 in UTC, 3 in Tokyo, 3 in New York; 2 lack an e-mail; one opted
    out of e-mail, one of http; and 5 'other' clients the filters below leave aside."""
    make_clients(engine, 2, timezone="UTC", first_phone=79000000000)
    make_clients(engine, 2, timezone="UTC", email="u@example.com", first_phone=79000000100)
    make_clients(engine, 3, timezone="Asia/Tokyo", email="t@example.com", first_phone=79000000200)
    make_clients(
        engine, 3, timezone="America/New_York", email="n@example.com", first_phone=79000000300
    )
    make_clients(engine, 5, tags=["other"], first_phone=79000000400)
    with engine.begin() as conn:
        conn.execute(text("UPDATE client SET opted_out = '{email}' WHERE phone = '+79000000200'"))
        conn.execute(text("UPDATE client SET opted_out = '{http}' WHERE phone = '+79000000300'"))


def stored_rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in ("campaign", "campaign_progress", "message", "outbox")
        ]


@pytest.mark.usefixtures("audience")
@pytest.mark.parametrize(
    ("fields", "recipients", "left_out"),
    [
        ({}, 9, {"total": 1, "no_phone": 0, "no_email": 0, "opted_out": 1}),
        (
            {"channel": "email", "subject": "S"},
            7,
            {"total": 3, "no_phone": 0, "no_email": 2, "opted_out": 1},
        ),
    ],
)
def test_counts_who_matches_and_who_is_left_out_and_why(
    api: FlaskClient, engine: Engine, fields: dict[str, Any], recipients: int, left_out: dict
) -> None:
    response = api.post(PATH, json=body(filter={"tags": ["news"]}, **fields), headers=AUTH)

    assert response.status_code == 200, response.json
    assert response.json["matched"] == 10
    assert response.json["recipients"] == recipients
    assert response.json["left_out"] == left_out
    assert response.json["in_window_now"] == recipients
    assert stored_rows(engine) == [0, 0, 0, 0]


@pytest.mark.usefixtures("audience")
def test_counts_those_inside_their_window_now(api: FlaskClient) -> None:
    # Open around the current hour in UTC: closed in Tokyo (+9) and New York (-4/-5).
    now = dt.datetime.now(dt.UTC)
    window = {
        "start": clock(now - dt.timedelta(hours=1)),
        "end": clock(now + dt.timedelta(hours=2)),
    }

    preview = api.post(
        PATH, json=body(filter={"tags": ["news"]}, send_window=window), headers=AUTH
    ).json

    assert (preview["recipients"], preview["in_window_now"]) == (9, 4)


@pytest.mark.usefixtures("audience")
def test_forecast_without_a_window_is_recipients_over_the_rate(api: FlaskClient) -> None:
    preview = api.post(PATH, json=body(filter={"tags": ["news"]}, rate_limit=2), headers=AUTH).json

    forecast = preview["forecast"]
    starts = dt.datetime.fromisoformat(forecast["starts_at"])
    expected = starts + dt.timedelta(seconds=4.5)
    assert (forecast["rate_per_s"], forecast["rate_basis"]) == (2.0, "rate_limit")
    assert dt.datetime.fromisoformat(forecast["finishes_at"]) == ceil_minute(expected)
    assert forecast["fits_before_end"] is True


def test_forecast_waits_for_the_window_and_spills_into_the_next_day(
    api: FlaskClient, engine: Engine
) -> None:
    make_clients(engine, 5000, timezone="UTC")
    now = dt.datetime.now(dt.UTC)
    opens = (now + dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    window = {"start": clock(opens), "end": clock(opens + dt.timedelta(hours=1))}

    soon = api.post(PATH, json=body(send_window=window, rate_limit=1), headers=AUTH).json
    short = api.post(
        PATH,
        json=body(
            send_window=window, rate_limit=1, ends_at=(opens + dt.timedelta(hours=5)).isoformat()
        ),
        headers=AUTH,
    ).json

    # 3,600 of 5,000 in the first hour-long window; 1,400 s more the next day.
    expected = opens + dt.timedelta(days=1, minutes=24)
    assert dt.datetime.fromisoformat(soon["forecast"]["finishes_at"]) == expected
    assert soon["in_window_now"] == 0
    assert soon["forecast"]["fits_before_end"] is True
    assert short["forecast"]["fits_before_end"] is False


@pytest.mark.usefixtures("audience")
def test_a_channel_ceiling_below_the_campaign_rate_bounds_the_forecast(
    settings: Settings, engine: Engine
) -> None:
    limits = {"http": ChannelLimits(per_second=3.0)}
    capped = create_app(dataclasses.replace(settings, channel_limits=limits), engine)

    forecast = (
        capped.test_client().post(PATH, json=body(rate_limit=100), headers=AUTH).json["forecast"]
    )

    assert (forecast["rate_per_s"], forecast["rate_basis"]) == (3.0, "channel_limit")


def test_an_invalid_campaign_is_422_like_on_create_and_stores_nothing(
    api: FlaskClient, engine: Engine
) -> None:
    response = api.post(PATH, json=body(text="Hi {{ nickname }}"), headers=AUTH)

    assert response.status_code == 422
    assert "text" in response.json["errors"]["json"]
    assert stored_rows(engine) == [0, 0, 0, 0]


def ceil_minute(at: dt.datetime) -> dt.datetime:
    floored = at.replace(second=0, microsecond=0)
    return floored if floored == at else floored + dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("rate_limit", "expected"),
    [
        (None, (500.0, "default_throughput")),
        (500, (500.0, "rate_limit")),
        (10_000, (500.0, "default_throughput")),
    ],
)
def test_the_forecast_names_where_its_rate_comes_from(
    api: FlaskClient, rate_limit: int | None, expected: tuple[float, str]
) -> None:
    forecast = api.post(PATH, json=body(rate_limit=rate_limit), headers=AUTH).json["forecast"]

    assert (forecast["rate_per_s"], forecast["rate_basis"]) == expected


GATEWAYS = (
    '{"alpha": {"url": "http://127.0.0.1:8901", "price_per_segment": "0.01"},'
    ' "beta": {"url": "http://127.0.0.1:8902", "price_per_segment": "0.05"},'
    ' "gamma": {"url": "http://127.0.0.1:8903"}}'
)
ROUTES = '{"operators": {"901": ["beta"]}, "prefixes": {"7912": ["gamma"]}, "default": ["alpha"]}'


def routed(settings: Settings, engine: Engine, **changes: Any) -> FlaskClient:
    routing = parse_routing(GATEWAYS, ROUTES, "", "")
    app = create_app(dataclasses.replace(settings, gateway_routing=routing, **changes), engine)
    return app.test_client()


@pytest.fixture
def sms_audience(engine: Engine) -> None:
    """4 on operator 900 (Ann, a short name), 3 on 901 named in Cyrillic, 2 with +7912
    phones whose name is long enough for two parts, 1 opted out of http."""
    make_clients(engine, 4, attributes={"name": "Ann"}, first_phone=79000000000)
    make_clients(
        engine, 3, operator_code="901", attributes={"name": "Жанна"}, first_phone=79010000000
    )
    make_clients(engine, 2, attributes={"name": "x" * 160}, first_phone=79120000000)
    make_clients(engine, 1, attributes={"name": "Ann"}, first_phone=79000000900)
    with engine.begin() as conn:
        conn.execute(text("UPDATE client SET opted_out = '{http}' WHERE phone = '+79000000900'"))


@pytest.mark.usefixtures("sms_audience")
def test_sms_forecast_renders_for_every_recipient_and_prices_each_route(
    settings: Settings, engine: Engine
) -> None:
    response = routed(settings, engine).post(PATH, json=body(text="Hi {{ name }}"), headers=AUTH)

    assert response.status_code == 200, response.json
    sms = response.json["sms"]
    assert sms["messages"] == {"GSM-7": 6, "UCS-2": 3}
    assert sms["forced_ucs2_by"] == "Ж"
    assert sms["max_segments"] == 10
    assert sms["routes"] == [
        {"route": "default", "messages": 4, "segments": 4, "cost": "0.04"},
        {"route": "operator 901", "messages": 3, "segments": 3, "cost": "0.15"},
        {"route": "prefix 7912", "messages": 2, "segments": 4, "cost": None},
    ]
    assert sms["segments"] == 11
    assert sms["cost"] is None


@pytest.mark.usefixtures("sms_audience")
def test_sms_total_cost_is_known_when_every_route_used_has_a_price(
    settings: Settings, engine: Engine
) -> None:
    preview = (
        routed(settings, engine)
        .post(
            PATH,
            json=body(text="Hi {{ name }}", filter={"operator_codes": ["900", "901"]}),
            headers=AUTH,
        )
        .json
    )

    # The +7912 clients are on operator 900 too, but their prefix routes them to gamma.
    assert preview["sms"]["cost"] is None
    only_901 = (
        routed(settings, engine)
        .post(
            PATH, json=body(text="Hi {{ name }}", filter={"operator_codes": ["901"]}), headers=AUTH
        )
        .json
    )
    assert only_901["sms"]["cost"] == "0.15"


def test_email_previews_have_no_sms_figures(api: FlaskClient, engine: Engine) -> None:
    make_clients(engine, 2, email="e@example.com")
    response = api.post(PATH, json=body(channel="email", subject="S"), headers=AUTH)

    assert response.status_code == 200
    assert response.json is not None
    assert "sms" not in response.json


@pytest.mark.usefixtures("sms_audience")
def test_a_text_over_the_segment_limit_is_422_naming_count_and_limit(
    settings: Settings, engine: Engine
) -> None:
    client = routed(settings, engine, sms_max_segments=1)

    response = client.post(PATH, json=body(text="Hi {{ name }}"), headers=AUTH)

    assert response.status_code == 422
    assert response.json["errors"]["json"]["text"] == [
        "renders to 2 segments for 2 recipients (GSM-7); at most 1"
    ]
    assert stored_rows(engine) == [0, 0, 0, 0]


def test_the_forecast_reads_the_audience_in_a_fixed_number_of_statements(
    settings: Settings, engine: Engine
) -> None:
    def statements_for(count: int, first_phone: int) -> int:
        make_clients(engine, count, first_phone=first_phone)
        seen: list[str] = []

        def record(*args: Any) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", record)
        try:
            response = routed(settings, engine).post(PATH, json=body(), headers=AUTH)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 200
        return len(seen)

    assert statements_for(3, 79000000000) == statements_for(500, 79100000000)
