"""POST /clients/import: JSON and CSV, upsert by phone, counts and reasons, broken bodies."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.api.core.importer import import_clients
from services.api.resources.clients import validate_client
from shared.config import Settings
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
URL = "/api/v1/clients/import"


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def clients(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM client ORDER BY id")).mappings()
        return {row["phone"]: dict(row) for row in rows}


def send_json(api: FlaskClient, records: Any) -> Any:
    return api.post(URL, data=json.dumps(records), content_type="application/json", headers=AUTH)


def send_csv(api: FlaskClient, body: str) -> Any:
    return api.post(URL, data=body.encode(), content_type="text/csv; charset=utf-8", headers=AUTH)


def test_json_import_stores_valid_rows_and_explains_the_rest(
    api: FlaskClient, engine: Engine
) -> None:
    api.post("/api/v1/clients", json={"phone": "+79123456700", "tags": ["old"]}, headers=AUTH)
    records = [
        {"phone": "+79123456701", "tags": ["vip"], "attributes": {"first_name": "Ann"}},
        {"phone": "+1 555 0100"},
        "not an object",
        {"phone": "79123456700", "tags": ["new"]},
        {"phone": "+79123456702", "timezone": "Mars/Base", "email": "nope"},
        {"phone": "+79123456703", "operator_code": "777"},
        {"phone": "+79123456701", "tags": ["vip", "again"]},
    ]

    response = send_json(api, records)

    assert response.status_code == 200
    report = response.json
    assert (report["created"], report["updated"], report["rejected"]) == (2, 2, 3)
    by_row = {error["row"]: error for error in report["errors"]}
    assert set(by_row) == {2, 3, 5}
    assert by_row[2]["phone"] == "+1 555 0100" and "phone" in by_row[2]["errors"]
    assert set(by_row[5]["errors"]) == {"timezone", "email"}
    stored = clients(engine)
    assert set(stored) == {"+79123456700", "+79123456701", "+79123456703"}
    assert stored["+79123456700"]["tags"] == ["new"]
    assert stored["+79123456701"]["tags"] == ["vip", "again"]
    assert stored["+79123456701"]["attributes"] == {}
    assert stored["+79123456703"]["operator_code"] == "777"


def test_csv_import_maps_columns_tags_and_attributes(api: FlaskClient, engine: Engine) -> None:
    body = (
        "\ufeffphone,tags,timezone,email,first_name,city\r\n"
        "+79123456701,vip;beta,Europe/Moscow,ann@example.com,Ann,Kazan\r\n"
        "79123456702,vip|gamma,,,Bob,\r\n"
        "12345,,,,,\r\n"
        "+79123456703,,Nowhere/City,,,\r\n"
        "\r\n"
        '"+79123456704","a, b",UTC,,"Quoted, name",Omsk,extra\r\n'
    )

    response = send_csv(api, body)

    assert response.status_code == 200
    report = response.json
    assert (report["created"], report["updated"], report["rejected"]) == (2, 0, 3)
    assert [(e["row"], e["phone"], list(e["errors"])) for e in report["errors"]] == [
        (3, "12345", ["phone"]),
        (4, "+79123456703", ["timezone"]),
        (5, "+79123456704", ["_schema"]),
    ]
    stored = clients(engine)
    ann, bob = stored["+79123456701"], stored["+79123456702"]
    assert (ann["tags"], ann["timezone"], ann["email"]) == (
        ["vip", "beta"],
        "Europe/Moscow",
        "ann@example.com",
    )
    assert ann["attributes"] == {"first_name": "Ann", "city": "Kazan"}
    assert (bob["tags"], bob["timezone"], bob["email"]) == (["vip", "gamma"], "UTC", None)
    assert bob["attributes"] == {"first_name": "Bob"}
    assert bob["operator_code"] == "912"


def test_chunks_upsert_separately_and_duplicates_count_as_updates(engine: Engine) -> None:
    records = [{"phone": f"+7912345670{n % 3}", "attributes": {"n": n}} for n in range(7)]

    report = import_clients(
        engine, io.BytesIO(json.dumps(records).encode()), "json", validate_client, chunk_rows=2
    )

    assert (report.created, report.updated, report.rejected) == (3, 4, 0)
    stored = clients(engine)
    assert {phone: row["attributes"]["n"] for phone, row in stored.items()} == {
        "+79123456700": 6,
        "+79123456701": 4,
        "+79123456702": 5,
    }


def test_reported_errors_are_capped_but_all_are_counted(api: FlaskClient) -> None:
    records = [{"phone": "bad"}] * 1_005 + [{"phone": "+79123456701"}]

    report = send_json(api, records).json

    assert (report["created"], report["rejected"]) == (1, 1_005)
    assert len(report["errors"]) == 1_000
    assert report["errors"][-1]["row"] == 1_000


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'[{"phone": "+79123456701"}, {"phone": ', "application/json", 422),
        (b'[{"phone": "+79123456701"}] trailing', "application/json", 422),
        (b'{"phone": "+79123456701"}', "application/json", 422),
        (b"", "application/json", 422),
        (b"", "text/csv", 422),
        (b"mobile,tags\n+79123456701,vip\n", "text/csv", 422),
        (b"phone,tags\n+79123456701,\xff\xfe\n", "text/csv", 422),
        (b"phone\n+79123456701\n", "text/plain", 415),
        (b"phone\n+79123456701\n", "application/xml", 415),
    ],
)
def test_a_broken_body_is_refused_and_nothing_is_stored(
    api: FlaskClient, engine: Engine, body: bytes, content_type: str, status: int
) -> None:
    response = api.post(URL, data=body, content_type=content_type, headers=AUTH)

    assert response.status_code == status
    assert response.json["message"]
    assert clients(engine) == {}
