"""Templates over HTTP: create (201, 409), list by name, read, replace, delete; checked like
campaign texts; campaigns copy a template's contents when they are created."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import READ_TOKEN, WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
TEMPLATE = {
    "name": "shipped",
    "channel": "email",
    "subject": "Order {{ order }}",
    "text": "Your order {{ order }} is on its way",
    "html": "<p>{{ order }}</p>",
}
ENDS = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
CAMPAIGN = {"name": "From a template", "channel": "email", "template": "shipped", "ends_at": ENDS}


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def count(engine: Engine, table: str = "template") -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def create(api: FlaskClient, **fields: Any) -> Any:
    return api.post("/api/v1/templates", json={**TEMPLATE, **fields}, headers=AUTH)


def add_attribute(api: FlaskClient, key: str) -> None:
    client = {"phone": "+79123456789", "email": "a@example.org", "attributes": {key: "x"}}
    assert api.post("/api/v1/clients", json=client, headers=AUTH).status_code == 201


def test_create_read_list_replace_delete(api: FlaskClient, engine: Engine) -> None:
    created = create(api)
    create(api, name="a.first", channel="http", subject=None, html=None)

    assert created.status_code == 201 and created.json["name"] == "shipped"
    names = [t["name"] for t in api.get("/api/v1/templates", headers=READ).json or []]
    assert names == ["a.first", "shipped"]
    assert api.get("/api/v1/templates/shipped", headers=READ).json["text"] == TEMPLATE["text"]
    body = {"channel": "email", "subject": "New", "text": "New text"}
    replaced = api.put("/api/v1/templates/shipped", json=body, headers=AUTH)
    assert replaced.status_code == 200
    assert (replaced.json["text"], replaced.json["html"]) == ("New text", None)
    assert api.delete("/api/v1/templates/shipped", headers=AUTH).status_code == 204
    assert api.get("/api/v1/templates/shipped", headers=READ).status_code == 404
    assert count(engine) == 1


def test_a_taken_name_is_409(api: FlaskClient, engine: Engine) -> None:
    create(api)

    response = create(api, text="other")

    assert response.status_code == 409 and "name" in response.json["errors"]["json"]
    assert count(engine) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Upper"}, "name"),
        ({"name": "-dash"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"subject": None}, "subject"),
        ({"channel": "http", "subject": None}, "html"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "Hi {{ order"}, "text"),
        ({"channel": "pigeon"}, "channel"),
    ],
)
def test_an_invalid_template_is_422_and_not_stored(
    api: FlaskClient, engine: Engine, changes: dict[str, Any], field: str
) -> None:
    response = create(api, **changes)

    assert response.status_code == 422 and field in response.json["errors"]["json"]
    assert count(engine) == 0


def test_unknown_names_are_404(api: FlaskClient) -> None:
    body = {"channel": "http", "text": "x"}
    assert api.get("/api/v1/templates/nope", headers=READ).status_code == 404
    assert api.put("/api/v1/templates/nope", json=body, headers=AUTH).status_code == 404
    assert api.delete("/api/v1/templates/nope", headers=AUTH).status_code == 404
    assert api.get("/api/v1/templates/a%00b", headers=READ).status_code == 404


def test_writes_need_the_write_scope(api: FlaskClient, engine: Engine) -> None:
    assert api.post("/api/v1/templates", json=TEMPLATE, headers=READ).status_code == 403
    assert api.get("/api/v1/templates").status_code == 401
    assert count(engine) == 0


def test_a_campaign_copies_its_template_and_keeps_the_copy(api: FlaskClient) -> None:
    add_attribute(api, "order")
    create(api)

    campaign = api.post("/api/v1/campaigns", json=CAMPAIGN, headers=AUTH)
    api.delete("/api/v1/templates/shipped", headers=AUTH)

    assert campaign.status_code == 201, campaign.json
    assert campaign.json["template"] == "shipped"
    shown = api.get(f"/api/v1/campaigns/{campaign.json['id']}", headers=READ).json
    assert (shown["text"], shown["subject"], shown["html"]) == (
        TEMPLATE["text"],
        TEMPLATE["subject"],
        TEMPLATE["html"],
    )
    assert shown["template"] is None


def test_a_subject_given_with_the_template_wins(api: FlaskClient) -> None:
    add_attribute(api, "order")
    create(api)

    campaign = api.post("/api/v1/campaigns", json={**CAMPAIGN, "subject": "Mine"}, headers=AUTH)

    assert campaign.json["subject"] == "Mine" and campaign.json["text"] == TEMPLATE["text"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": "Hi"}, "template"),
        ({"template": None}, "text"),
        ({"template": "missing"}, "template"),
        ({"channel": "http"}, "template"),
    ],
)
def test_a_campaign_needs_text_or_an_existing_template_of_its_channel(
    api: FlaskClient, engine: Engine, changes: dict[str, Any], field: str
) -> None:
    add_attribute(api, "order")
    create(api)
    body = {key: value for key, value in {**CAMPAIGN, **changes}.items() if value is not None}

    response = api.post("/api/v1/campaigns", json=body, headers=AUTH)

    assert response.status_code == 422 and field in response.json["errors"]["json"]
    assert count(engine, "campaign") == 0


def test_a_copied_text_with_an_unknown_variable_is_refused(
    api: FlaskClient, engine: Engine
) -> None:
    create(api)

    response = api.post("/api/v1/campaigns", json=CAMPAIGN, headers=AUTH)

    assert response.status_code == 422
    assert "unknown variable 'order'" in response.json["errors"]["json"]["template"][0]
    assert count(engine, "campaign") == 0
