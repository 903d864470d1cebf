"""E-mail campaigns over HTTP: the HTML template, client opt-outs, who is left out and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from services.api.app import create_app
from services.scheduler.releaser import to_item
from shared.db.queries.messages import DueMessage
from shared.db.queries.scheduling import Releasable
from tests.conftest import WRITE_TOKEN
from tests.support.factories import make_clients

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}


@pytest.fixture
def api(settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def campaign_body(**fields: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "name": "spring",
        "channel": "email",
        "subject": "News for {{ email }}",
        "text": "Hello {{ email }}",
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        **fields,
    }


def test_an_email_campaign_keeps_its_html_template(api):
    created = api.post(
        "/api/v1/campaigns", json=campaign_body(html="<p>Hello {{ email }}</p>"), headers=AUTH
    )

    assert created.status_code == 201, created.json
    fetched = api.get(f"/api/v1/campaigns/{created.json['id']}", headers=AUTH).json
    assert fetched["html"] == "<p>Hello {{ email }}</p>"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"html": "<p>{{ nickname }}</p>"}, "unknown variable 'nickname'"),
        ({"html": "<p>{{ email </p>"}, "unclosed"),
        ({"html": "<p>{{ 1x }}</p>"}, "invalid variable name"),
        ({"channel": "http", "subject": None, "html": "<p>hi</p>"}, "only for channel email"),
        ({"subject": None}, "required when channel is email"),
    ],
)
def test_a_bad_html_template_or_missing_subject_is_refused(api, engine, fields, reason):
    response = api.post("/api/v1/campaigns", json=campaign_body(**fields), headers=AUTH)

    assert response.status_code == 422
    assert reason in str(response.json["errors"])
    assert api.get("/api/v1/campaigns", headers=AUTH).json["items"] == []


def test_an_html_variable_some_client_has_is_accepted(api, engine):
    make_clients(engine, 1, attributes={"nickname": "Annie"})

    response = api.post(
        "/api/v1/campaigns", json=campaign_body(html="<p>{{ nickname }}</p>"), headers=AUTH
    )

    assert response.status_code == 201


def test_a_replacement_without_html_drops_it(api):
    created = api.post("/api/v1/campaigns", json=campaign_body(html="<p>x</p>"), headers=AUTH)

    replaced = api.put(
        f"/api/v1/campaigns/{created.json['id']}", json=campaign_body(), headers=AUTH
    )

    assert replaced.status_code == 200 and replaced.json["html"] is None


def test_clients_opt_outs_are_edited_through_the_api(api):
    created = api.post(
        "/api/v1/clients",
        json={"phone": "+79123456789", "opted_out": ["email", "email"]},
        headers=AUTH,
    )
    client_id = created.json["id"]

    replaced = api.put(f"/api/v1/clients/{client_id}", json={"phone": "+79123456789"}, headers=AUTH)
    patched = api.patch(
        f"/api/v1/clients/{client_id}", json={"opted_out": ["http", "email"]}, headers=AUTH
    )
    refused = api.patch(f"/api/v1/clients/{client_id}", json={"opted_out": ["fax"]}, headers=AUTH)

    assert created.json["opted_out"] == ["email"]
    assert replaced.json["opted_out"] == ["email"]
    assert patched.json["opted_out"] == ["http", "email"]
    assert refused.status_code == 422 and "opted_out" in refused.json["errors"]["json"]


def test_released_items_carry_escaped_html_and_the_client_id():
    now = dt.datetime.now(dt.UTC)
    campaign = Releasable(
        1,
        "email",
        "Hi {{ name }}",
        "For {{ name }}",
        now + dt.timedelta(hours=1),
        0,
        html="<p>Hi {{ name }}</p>",
    )
    message = DueMessage(
        7, "+79000000000", "ann@example.com", "900", "UTC", {"name": "<Ann & co>"}, client_id=3
    )

    item = to_item(campaign, message)

    assert item.address == "ann@example.com"
    assert item.text == "Hi <Ann & co>"
    assert item.subject == "For <Ann & co>"
    assert item.html == "<p>Hi &lt;Ann &amp; co&gt;</p>"
    assert item.client_id == 3
