"""Clients over HTTP on the real database: CRUD, filters, keyset pages, 404/409/422."""

from __future__ import annotations

from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
PHONE = "+79123456789"


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def add(api: FlaskClient, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/clients", json={"phone": PHONE, **fields}, headers=AUTH)
    assert response.status_code == 201, response.json
    return cast(dict[str, Any], response.json)


def test_creates_a_client_in_e164_with_a_derived_operator_code(api: FlaskClient) -> None:
    client = add(
        api,
        phone="7 912 345-67-89",
        tags=["vip"],
        timezone="Europe/Moscow",
        email="ann@example.com",
        attributes={"first_name": "Ann", "age": 30, "vip": True},
    )

    fetched = api.get(f"/api/v1/clients/{client['id']}", headers=AUTH).json
    assert fetched["phone"] == PHONE
    assert fetched["operator_code"] == "912"
    assert fetched["attributes"] == {"first_name": "Ann", "age": 30, "vip": True}
    assert fetched["timezone"] == "Europe/Moscow"
    assert fetched["created_at"] and fetched["updated_at"]


def test_duplicate_phone_is_a_conflict_on_the_phone_field(api: FlaskClient, engine: Engine) -> None:
    add(api)

    response = api.post("/api/v1/clients", json={"phone": "79123456789"}, headers=AUTH)

    assert response.status_code == 409
    assert "phone" in response.json["errors"]["json"]
    assert count(engine, "client") == 1


def test_changing_a_phone_to_a_taken_one_is_a_conflict(api: FlaskClient) -> None:
    add(api)
    other = add(api, phone="+79123456780")

    response = api.patch(f"/api/v1/clients/{other['id']}", json={"phone": PHONE}, headers=AUTH)

    assert response.status_code == 409
    assert api.get(f"/api/v1/clients/{other['id']}", headers=AUTH).json["phone"] == "+79123456780"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+1 555 0100"}, "phone"),
        ({"phone": PHONE, "timezone": "Nowhere/City"}, "timezone"),
        ({"phone": PHONE, "tags": "vip"}, "tags"),
        ({"phone": PHONE, "email": "nope"}, "email"),
        ({"phone": PHONE, "operator_code": "12a"}, "operator_code"),
        ({"phone": PHONE, "attributes": {"a": {"b": 1}}}, "attributes"),
        ({"phone": PHONE, "nickname": "x"}, "nickname"),
        ({"phone": PHONE, "id": 7}, "id"),
        ({"phone": PHONE + "\x00"}, "phone"),
        ({}, "phone"),
    ],
)
def test_invalid_fields_are_422_and_nothing_is_written(
    api: FlaskClient, engine: Engine, body: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/clients", json=body, headers=AUTH)

    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert count(engine, "client") == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 422),
        ("[1, 2]", "application/json", 422),
        ("phone=+79123456789", "application/x-www-form-urlencoded", 415),
        ("+79123456789", "text/plain", 415),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_a_message(
    api: FlaskClient, engine: Engine, data: str, content_type: str, status: int
) -> None:
    response = api.post("/api/v1/clients", data=data, content_type=content_type, headers=AUTH)

    assert response.status_code == status
    assert response.json["code"] == status
    assert count(engine, "client") == 0


def test_put_replaces_every_field(api: FlaskClient) -> None:
    client = add(api, tags=["vip"], email="a@example.com", attributes={"x": "1"})

    response = api.put(
        f"/api/v1/clients/{client['id']}", json={"phone": "+442079460958"}, headers=AUTH
    )

    assert response.status_code == 200
    replaced = response.json
    assert (replaced["phone"], replaced["operator_code"]) == ("+442079460958", "207")
    assert (replaced["tags"], replaced["email"], replaced["attributes"]) == ([], None, {})


def test_patch_changes_only_the_given_fields(api: FlaskClient) -> None:
    client = add(api, tags=["vip"], email="a@example.com")

    response = api.patch(
        f"/api/v1/clients/{client['id']}", json={"timezone": "Asia/Tokyo"}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json["timezone"] == "Asia/Tokyo"
    assert response.json["tags"] == ["vip"]
    assert response.json["email"] == "a@example.com"


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_client_is_404(api: FlaskClient, method: str) -> None:
    response = getattr(api, method)("/api/v1/clients/999", json={"phone": PHONE}, headers=AUTH)

    assert response.status_code == 404
    assert response.json["message"]


def test_delete_cancels_pending_messages_and_keeps_history(
    api: FlaskClient, engine: Engine
) -> None:
    me = add(api)["id"]
    other = add(api, phone="+79000000001")["id"]
    with engine.begin() as conn:
        campaign = conn.scalar(
            text(
                "INSERT INTO campaign (name, channel, text, starts_at, ends_at, status) "
                "VALUES ('c', 'http', 't', now(), now() + interval '1 day', 'running') RETURNING id"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaign_progress (campaign_id) VALUES (:c);"
                "INSERT INTO message (campaign_id, client_id) VALUES (:c, :me), (:c, :other)"
            ),
            {"c": campaign, "me": me, "other": other},
        )

    response = api.delete(f"/api/v1/clients/{me}", headers=AUTH)

    assert response.status_code == 204
    assert api.get(f"/api/v1/clients/{me}", headers=AUTH).status_code == 404
    with engine.connect() as conn:
        messages = conn.execute(text("SELECT client_id, status FROM message ORDER BY id")).all()
        progress = conn.execute(text("SELECT pending, cancelled FROM campaign_progress")).one()
    assert [tuple(row) for row in messages] == [(None, "cancelled"), (other, "pending")]
    assert tuple(progress) == (1, 1)


def test_filters_by_tag_and_operator_code(api: FlaskClient) -> None:
    add(api, phone="+79123456701", tags=["vip", "beta"])
    add(api, phone="+79223456702", tags=["vip"])
    add(api, phone="+79123456703", tags=["beta"])

    def phones(query: str) -> list[str]:
        items = api.get(f"/api/v1/clients?{query}", headers=AUTH).json["items"]
        return [item["phone"] for item in items]

    assert phones("tag=vip") == ["+79123456701", "+79223456702"]
    assert phones("operator_code=912") == ["+79123456701", "+79123456703"]
    assert phones("tag=vip&operator_code=912") == ["+79123456701"]
    assert phones("tag=none") == []


def test_keyset_pages_cover_every_client_once(api: FlaskClient) -> None:
    for n in range(5):
        add(api, phone=f"+7912345670{n}")

    seen: list[int] = []
    after = None
    pages = 0
    while True:
        query = "limit=2" + (f"&after={after}" if after is not None else "")
        page = api.get(f"/api/v1/clients?{query}", headers=AUTH).json
        seen += [item["id"] for item in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break

    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 5
    assert pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "after=-5"])
def test_bad_page_arguments_are_422(api: FlaskClient, query: str) -> None:
    assert api.get(f"/api/v1/clients?{query}", headers=AUTH).status_code == 422
