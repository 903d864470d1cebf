"""Text PostgreSQL cannot store (NUL, lone surrogates) on every write: a 422 naming the field.

Nothing is stored or changed by a refused request; an import refuses only the rows at fault.
A lone surrogate reaches the API as a JSON escape ("\\ud800", which json.loads keeps) or, in
a CSV, as its encoded bytes; the storable set itself is checked against PostgreSQL here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from shared.domain.text import storable_text_error
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
ENDS_AT = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
CLIENT = {"phone": "+79123456789", "tags": ["vip"], "attributes": {"name": "Ann"}}
CAMPAIGN = {"name": "c", "channel": "http", "text": "Hi {{ phone }}", "ends_at": ENDS_AT}
EMAIL_CAMPAIGN = {**CAMPAIGN, "channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}
# A lone high, a lone low, two highs (yajl once read them as U+10000) and NUL.
BAD = ["\ud800", "x\udfff", "\udbff\udbff", "a\x00b"]
HIGH_THEN_LOW_BYTES = "\ud83d\ude00".encode("utf-8", "surrogatepass")  # CESU-8 for an emoji


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    # A closed port: a test send that got through would fail fast, never reach a real gateway.
    quiet = dataclasses.replace(settings, gateway_url="http://127.0.0.1:9")
    return create_app(quiet, engine).test_client()


def rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings()
        return [dict(row) for row in found]


def send(api: FlaskClient, method: str, path: str, body: Any) -> Any:
    # json.dumps writes a lone surrogate as its escape, as a client's JSON encoder would.
    return api.open(
        path, method=method, data=json.dumps(body), content_type="application/json", headers=AUTH
    )


def client_with(path: tuple[str, ...], value: str) -> dict[str, Any]:
    fields: dict[tuple[str, ...], dict[str, Any]] = {
        ("phone",): {"phone": value},
        ("operator_code",): {"operator_code": value},
        ("tags",): {"tags": ["vip", value]},
        ("timezone",): {"timezone": value},
        ("email",): {"email": f"ann@ex{value}ample.com"},
        ("attributes", "key"): {"attributes": {value: "x"}},
        ("attributes", "value"): {"attributes": {"name": value}},
        ("opted_out",): {"opted_out": [value]},
    }
    return {**CLIENT, **fields[path]}


def campaign_with(field: str, value: str) -> dict[str, Any]:
    nested = {
        "filter": {"tags": [value], "operator_codes": []},
        "send_window": {"start": value, "end": "21:00"},
    }
    return {**EMAIL_CAMPAIGN, field: nested.get(field, value)}


CLIENT_FIELDS = [
    ("phone",),
    ("operator_code",),
    ("tags",),
    ("timezone",),
    ("email",),
    ("attributes", "key"),
    ("attributes", "value"),
    ("opted_out",),
]
CAMPAIGN_FIELDS = ["name", "channel", "text", "subject", "html", "filter", "send_window"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("path", CLIENT_FIELDS)
def test_a_new_client_with_unstorable_text_is_422_naming_the_field(
    api: FlaskClient, engine: Engine, path: tuple[str, ...], value: str
) -> None:
    response = send(api, "POST", "/api/v1/clients", client_with(path, value))

    assert response.status_code == 422, response.json
    assert path[0] in response.json["errors"]["json"]
    assert rows(engine, "client") == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("path", CLIENT_FIELDS)
def test_a_client_change_with_unstorable_text_is_422_and_changes_nothing(
    api: FlaskClient, engine: Engine, method: str, path: tuple[str, ...]
) -> None:
    client_id = send(api, "POST", "/api/v1/clients", CLIENT).json["id"]
    before = rows(engine, "client")

    response = send(api, method, f"/api/v1/clients/{client_id}", client_with(path, "\ud800"))

    assert response.status_code == 422, response.json
    assert path[0] in response.json["errors"]["json"]
    assert rows(engine, "client") == before


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("field", CAMPAIGN_FIELDS)
@pytest.mark.parametrize("path", ["/api/v1/campaigns", "/api/v1/campaigns/preview"])
def test_a_campaign_or_preview_with_unstorable_text_is_422_naming_the_field(
    api: FlaskClient, engine: Engine, path: str, field: str, value: str
) -> None:
    response = send(api, "POST", path, campaign_with(field, value))

    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]
    assert rows(engine, "campaign") == rows(engine, "outbox") == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("field", CAMPAIGN_FIELDS)
def test_a_campaign_change_with_unstorable_text_is_422_and_changes_nothing(
    api: FlaskClient, engine: Engine, method: str, field: str
) -> None:
    campaign_id = send(api, "POST", "/api/v1/campaigns", EMAIL_CAMPAIGN).json["id"]
    before = rows(engine, "campaign"), rows(engine, "outbox")

    response = send(api, method, f"/api/v1/campaigns/{campaign_id}", campaign_with(field, "\udc00"))

    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]
    assert (rows(engine, "campaign"), rows(engine, "outbox")) == before


@pytest.mark.parametrize(
    ("campaign", "address"),
    [(EMAIL_CAMPAIGN, "ann@ex\ud800ample.com"), (CAMPAIGN, "+7912\udfff3456789")],
)
def test_a_test_send_to_an_unstorable_address_is_422_naming_it(
    api: FlaskClient, campaign: dict[str, Any], address: str
) -> None:
    campaign_id = send(api, "POST", "/api/v1/campaigns", campaign).json["id"]

    response = send(api, "POST", f"/api/v1/campaigns/{campaign_id}/test", {"address": address})

    assert response.status_code == 422, response.json
    assert "address" in response.json["errors"]["json"]


def test_a_json_import_refuses_only_the_rows_with_unstorable_text(
    api: FlaskClient, engine: Engine
) -> None:
    records = [
        {"phone": "+79123456701", "tags": ["ok"]},
        {"phone": "+79123456702", "tags": ["\ud800"]},
        {"phone": "+79123456703", "attributes": {"\udc00": "x"}},
        {"phone": "+79123456704", "attributes": {"name": "\ud800\ud800"}},
        {"phone": "+79123456705", "email": "ann@ex\udfffample.com"},
        {"phone": "+79123456706", "tags": ["\x00"]},
        {"phone": "+79123456707", "attributes": {"name": "😀 \\ud800 is an escape"}},
    ]

    response = send(api, "POST", "/api/v1/clients/import", records)

    assert response.status_code == 200, response.json
    assert (response.json["created"], response.json["rejected"]) == (2, 5)
    assert [(e["row"], set(e["errors"])) for e in response.json["errors"]] == [
        (2, {"tags"}),
        (3, {"attributes"}),
        (4, {"attributes"}),
        (5, {"email"}),
        (6, {"tags"}),
    ]
    assert "surrogate" in response.json["errors"][0]["errors"]["tags"]["0"][0]
    stored = {row["phone"]: row for row in rows(engine, "client")}
    assert sorted(stored) == ["+79123456701", "+79123456707"]
    assert stored["+79123456707"]["attributes"] == {"name": "😀 \\ud800 is an escape"}


def test_a_json_import_with_surrogates_encoded_as_bytes_is_not_json(
    api: FlaskClient, engine: Engine
) -> None:
    body = b'[{"phone": "+79123456701", "tags": ["' + HIGH_THEN_LOW_BYTES + b'"]}]'

    response = api.post(
        "/api/v1/clients/import", data=body, content_type="application/json", headers=AUTH
    )

    assert response.status_code == 422
    assert "not valid JSON" in response.json["message"]
    assert rows(engine, "client") == []


def test_a_csv_import_refuses_only_the_rows_with_unstorable_text(
    api: FlaskClient, engine: Engine
) -> None:
    body = b"\n".join(
        [
            b"phone,tags,email,nickname",
            b"+79123456701,ok,,Ann",
            b"+79123456702,\xed\xa0\x80,,Bob",
            b"+79123456703,ok,,C" + HIGH_THEN_LOW_BYTES,
            b"+79123456704,ok,ann@ex\xed\xbf\xbfample.com,D",
            b"+79123456705,ok,,E\x00",
            b"+79123456706,ok,,\xf0\x9f\x98\x80",
        ]
    )

    response = api.post("/api/v1/clients/import", data=body, content_type="text/csv", headers=AUTH)

    assert response.status_code == 200, response.json
    assert (response.json["created"], response.json["rejected"]) == (2, 4)
    assert [(e["row"], set(e["errors"])) for e in response.json["errors"]] == [
        (2, {"tags"}),
        (3, {"attributes"}),
        (4, {"email"}),
        (5, {"attributes"}),
    ]
    stored = {row["phone"]: row for row in rows(engine, "client")}
    assert sorted(stored) == ["+79123456701", "+79123456706"]
    assert stored["+79123456706"]["attributes"] == {"nickname": "😀"}


@pytest.mark.parametrize("column", [b"nick\x00name", b"nick\xed\xa0\x80name"])
def test_a_csv_header_naming_an_unstorable_column_is_422(
    api: FlaskClient, engine: Engine, column: bytes
) -> None:
    body = b"phone,tags," + column + b"\n+79123456701,ok,Ann\n"

    response = api.post("/api/v1/clients/import", data=body, content_type="text/csv", headers=AUTH)

    assert response.status_code == 422
    assert "column 3" in response.json["message"]
    assert rows(engine, "client") == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/clients", "tag"),
        ("/api/v1/clients", "operator_code"),
        ("/api/v1/campaigns", "status"),
        ("/api/v1/campaigns", "channel"),
        ("/api/v1/campaigns/1/messages", "status"),
    ],
)
def test_a_query_parameter_with_nul_is_422_naming_it(
    api: FlaskClient, path: str, name: str
) -> None:
    response = api.get(f"{path}?{name}=a%00b", headers=AUTH)

    assert response.status_code == 422
    assert name in response.json["errors"]["query"]


def test_surrogate_bytes_in_a_query_stay_percent_escaped_text(api: FlaskClient) -> None:
    # Werkzeug leaves bytes that are not UTF-8 as their %XX escapes, so no surrogate is read.
    send(api, "POST", "/api/v1/clients", {**CLIENT, "tags": ["%ED%A0%80"]})

    response = api.get("/api/v1/clients?tag=%ED%A0%80", headers=AUTH)

    assert response.status_code == 200
    assert [client["tags"] for client in response.json["items"]] == [["%ED%A0%80"]]


def test_a_request_id_that_is_not_plain_ascii_is_not_stored(
    api: FlaskClient, engine: Engine
) -> None:
    response = api.post(
        "/api/v1/campaigns", json=CAMPAIGN, headers={**AUTH, "X-Request-ID": "r\x00é"}
    )

    assert response.status_code == 201
    (event,) = rows(engine, "outbox")
    assert event["headers"]["x-correlation-id"] == response.headers["X-Request-ID"] != "r\x00é"


def test_postgres_stores_exactly_the_text_storable_text_error_accepts(engine: Engine) -> None:
    everything = "".join(chr(code) for code in range(0x110000))
    refused = {char for char in everything if storable_text_error(char) is not None}
    storable = "".join(char for char in everything if char not in refused)

    with engine.connect() as conn:
        read_back = conn.execute(
            text("SELECT CAST(:t AS text), CAST(:a AS text[]), CAST(:j AS jsonb) ->> 'k'"),
            {"t": storable, "a": [storable], "j": json.dumps({"k": storable})},
        ).one()
        assert tuple(read_back) == (storable, [storable], storable)
        for char in sorted(refused)[:: len(refused) // 8] + ["\udfff"]:
            with pytest.raises((ValueError, UnicodeEncodeError)):
                conn.execute(text("SELECT CAST(:t AS text)"), {"t": char})
            conn.rollback()
    assert refused == {"\x00"} | {chr(code) for code in range(0xD800, 0xE000)}
