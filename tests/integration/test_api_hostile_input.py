"""Hostile input: oversized, malformed, mistyped, huge, injected, NUL, deeply nested, Unicode.

Every case gets a clear 4xx naming the field (or the body), never a 5xx, and a rejected
request stores nothing; what is accepted is stored and rendered literally.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.scheduler.lifecycle import start_due
from services.scheduler.releaser import release_due
from shared.config import Settings
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import declare_all, delivery_queue
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
ENDS_AT = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
CAMPAIGN = {"name": "c", "channel": "http", "text": "Hi {{ phone }}", "ends_at": ENDS_AT}
CLIENT = {"phone": "+79123456789"}
HUGE = "x" * 10_000
SQL = ["'; DROP TABLE client; --", "' OR '1'='1", "1); DELETE FROM campaign; --"]
TEMPLATE_LOOKALIKES = ["{{ phone }}", "{{7*7}}", "${7*7}", "{% for x in y %}", "#{7*7}"]
UNICODE = ["مرحبا بالعالم", "\u202eevil\u202c", "🎉👍🏽 émoji", "שלום", "e\u0301\u0301", "中文"]


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def stored(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in ("client", "campaign", "campaign_progress", "outbox")
        }


NOTHING = {"client": 0, "campaign": 0, "campaign_progress": 0, "outbox": 0}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/clients", CLIENT), ("/api/v1/campaigns", CAMPAIGN)],
)
def test_an_oversized_body_is_413_and_stores_nothing(
    settings: Settings, engine: Engine, path: str, body: dict[str, Any]
) -> None:
    small = create_app(dataclasses.replace(settings, max_request_bytes=2_000), engine)

    response = small.test_client().post(
        path, json={**body, "name": HUGE} if "name" in body else {**body, "email": HUGE},
        headers=AUTH,
    )  # fmt: skip

    assert response.status_code == 413
    assert response.json["code"] == 413
    assert stored(engine) == NOTHING


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        ('{"phone": "+79123456789"', "application/json", 422, "not valid JSON"),
        ("phone=+79123456789", "application/json", 422, "not valid JSON"),
        (b"\xff\xfe\x00", "application/json", 422, "not valid JSON"),
        ('{"phone": "+79123456789"}{}', "application/json", 422, "not valid JSON"),
        ("[" * 100_000, "application/json", 422, "nested too deeply"),
        ('{"phone": "+79123456789"}', "text/plain", 415, "JSON"),
        ("phone=%2B79123456789", "application/x-www-form-urlencoded", 415, "JSON"),
        ('{"phone": "+79123456789"}', "application/xml", 415, "JSON"),
    ],
)
def test_bodies_that_are_not_json_are_refused_clearly(
    api: FlaskClient, engine: Engine, data: Any, content_type: str, status: int, message: str
) -> None:
    response = api.post("/api/v1/clients", data=data, content_type=content_type, headers=AUTH)

    assert response.status_code == status
    assert message in response.json["message"]
    assert stored(engine) == NOTHING


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        ("[" * 100_000, "application/json", "deeper than"),
        ("[" + '{"phone": "+79123456789", "x": ' + "[" * 5_000 + "]" * 5_000 + "}]",
         "application/json", "deeper than"),
        ('{"phone": "+79123456789"}', "application/json", "JSON array"),
        (b"phone\n\xff\xfe\n", "text/csv", "UTF-8"),
        ("name,email\nAnn,a@example.com\n", "text/csv", "phone column"),
    ],
)  # fmt: skip
def test_an_unreadable_import_is_422_and_stores_nothing(
    api: FlaskClient, engine: Engine, data: Any, content_type: str, message: str
) -> None:
    response = api.post(
        "/api/v1/clients/import", data=data, content_type=content_type, headers=AUTH
    )

    assert response.status_code == 422
    assert message in response.json["message"]
    assert stored(engine) == NOTHING


def test_nul_in_csv_cells_rejects_those_rows_naming_the_field(
    api: FlaskClient, engine: Engine
) -> None:
    body = "phone,tags,nickname\n+7912\x003456789,a,b\n+79123456780,a\x00,b\n+79123456781,a,b\x00\n"

    response = api.post("/api/v1/clients/import", data=body, content_type="text/csv", headers=AUTH)

    assert response.status_code == 200
    assert (response.json["created"], response.json["rejected"]) == (0, 3)
    assert [set(e["errors"]) for e in response.json["errors"]] == [
        {"phone"},
        {"tags"},
        {"attributes"},
    ]
    assert stored(engine) == NOTHING


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": HUGE}, "phone"),
        ({**CLIENT, "email": f"{HUGE}@example.com"}, "email"),
        ({**CLIENT, "tags": [HUGE]}, "tags"),
        ({**CLIENT, "operator_code": HUGE}, "operator_code"),
        ({**CLIENT, "timezone": HUGE}, "timezone"),
        ({**CLIENT, "attributes": {"name": HUGE}}, "attributes"),
        ({**CLIENT, "attributes": {HUGE: "x"}}, "attributes"),
        ({"phone": "+7912\x003456789"}, "phone"),
        ({**CLIENT, "tags": ["a\x00b"]}, "tags"),
        ({**CLIENT, "attributes": {"name": "a\x00b"}}, "attributes"),
        ({**CLIENT, "attributes": {"a\x00b": "x"}}, "attributes"),
        ({**CLIENT, "attributes": {"name": {"nested": 1}}}, "attributes"),
        ({"phone": 79123456789}, "phone"),
        ({**CLIENT, "tags": "vip"}, "tags"),
        ({**CLIENT, "surprise": 1}, "surprise"),
    ],
)
def test_bad_client_fields_are_422_naming_the_field(
    api: FlaskClient, engine: Engine, body: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/clients", json=body, headers=AUTH)

    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert stored(engine) == NOTHING


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": HUGE}, "name"),
        ({"text": HUGE}, "text"),
        ({"channel": "email", "subject": HUGE}, "subject"),
        ({"filter": {"tags": [HUGE]}}, "filter"),
        ({"text": "Hi\x00"}, "text"),
        ({"name": "a\x00"}, "name"),
        ({"filter": {"tags": ["\x00"]}}, "filter"),
        ({"rate_limit": 10**30}, "rate_limit"),
        ({"rate_limit": "fast"}, "rate_limit"),
        ({"ends_at": "tomorrow"}, "ends_at"),
        ({"send_window": {"start": "9am", "end": "21:00"}}, "send_window"),
        ({"text": "{{ __class__.__mro__ }}"}, "text"),
        ({"text": "{{7*7}}"}, "text"),
    ],
)
def test_bad_campaign_fields_are_422_naming_the_field(
    api: FlaskClient, engine: Engine, changes: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/campaigns", json={**CAMPAIGN, **changes}, headers=AUTH)

    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert stored(engine) == NOTHING


@pytest.mark.parametrize(
    "query", ["tag=%00", "tag=" + "x" * 10_000, "limit=-1", "limit=1e9", "after=abc"]
)
def test_bad_query_parameters_are_422_naming_them(api: FlaskClient, query: str) -> None:
    response = api.get(f"/api/v1/clients?{query}", headers=AUTH)

    assert response.status_code == 422
    assert query.split("=")[0] in response.json["errors"]["query"]


@pytest.mark.parametrize("value", SQL + TEMPLATE_LOOKALIKES + UNICODE)
def test_strange_but_valid_text_is_stored_and_read_back_literally(
    api: FlaskClient, engine: Engine, value: str
) -> None:
    client = {**CLIENT, "tags": [value], "attributes": {"name": value, "note": value}}
    campaign = {
        **CAMPAIGN,
        "name": value,
        "channel": "email",
        # A campaign's own text is a template: only the client's values are taken literally.
        "subject": f"{value.replace('{', '(')} {{{{ name }}}}",
        "text": f"{value.replace('{', '(')} {{{{ name }}}}",
        "filter": {"tags": [value], "operator_codes": []},
    }

    created = api.post("/api/v1/clients", json=client, headers=AUTH)
    scheduled = api.post("/api/v1/campaigns", json=campaign, headers=AUTH)
    found = api.get("/api/v1/clients", query_string={"tag": value}, headers=AUTH)

    assert created.status_code == 201, created.json
    assert scheduled.status_code == 201, scheduled.json
    assert (created.json["tags"], created.json["attributes"]["name"]) == ([value], value)
    assert scheduled.json["name"] == value and scheduled.json["filter"]["tags"] == [value]
    assert [c["id"] for c in found.json["items"]] == [created.json["id"]]
    assert stored(engine) == {"client": 1, "campaign": 1, "campaign_progress": 1, "outbox": 1}


def test_values_that_look_like_code_are_rendered_literally(
    api: FlaskClient, engine: Engine, settings: Settings, broker: str
) -> None:
    values = SQL + TEMPLATE_LOOKALIKES + UNICODE
    for number, value in enumerate(values):
        client = {"phone": f"+7912345{number:04d}", "attributes": {"name": value}}
        assert api.post("/api/v1/clients", json=client, headers=AUTH).status_code == 201
    api.post("/api/v1/campaigns", json={**CAMPAIGN, "text": "Hi {{ name }}!"}, headers=AUTH)
    connection = connect(broker, "test-hostile-render")
    channel = connection.channel()
    declare_all(channel, settings.retry_delays_ms)
    channel.queue_purge(delivery_queue("http"))

    start_due(engine, Settings().message_partition_ids)
    release_due(engine, ConfirmingPublisher(channel), settings)

    texts = []
    while (got := channel.basic_get(delivery_queue("http"), auto_ack=True))[0] is not None:
        texts += [item.text for item in DeliveryBatch.decode(got[2]).items]
    connection.close()
    assert sorted(texts) == sorted(f"Hi {value}!" for value in values)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM client")) == len(values)
