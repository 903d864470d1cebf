"""Webhooks over HTTP: create (secret shown once), list, read, patch, delete, deliveries;
422 naming the field, 403 for a read token, 404 for unknown ids; nothing changes on a refusal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.api.core import webhooks as core
from shared.config import Settings
from tests.conftest import READ_TOKEN, WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WEBHOOK = {"url": "http://127.0.0.1:19601/hook", "events": ["message.sent", "campaign.completed"]}


@pytest.fixture(autouse=True)
def names_resolved_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve from this table, so no lookup leaves the machine."""
    table = {"localhost": ["127.0.0.1"], "inside.example": ["10.0.0.7"], "hooks.example": []}
    monkeypatch.setattr(core, "resolve_host", lambda host: table.get(host, []))


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


@pytest.fixture
def strict_api(settings: Settings, engine: Engine) -> FlaskClient:
    """The API as deployed: private addresses refused."""
    strict = dataclasses.replace(settings, webhook_allow_private=False)
    return create_app(strict, engine).test_client()


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM webhook")) or 0)


def create(api: FlaskClient, **fields: Any) -> Any:
    return api.post("/api/v1/webhooks", json={**WEBHOOK, **fields}, headers=AUTH)


def errors_of(response: Any) -> dict[str, Any]:
    return dict(response.get_json()["errors"]["json"])


def test_the_secret_is_shown_at_creation_only(api: FlaskClient) -> None:
    created = create(api, description="orders")

    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == WEBHOOK["url"]
    assert body["events"] == WEBHOOK["events"]
    assert body["enabled"] is True
    one = api.get(f"/api/v1/webhooks/{body['id']}", headers=READ).get_json()
    assert "secret" not in one
    assert one["description"] == "orders"
    listed = api.get("/api/v1/webhooks", headers=READ).get_json()
    assert [w["id"] for w in listed["items"]] == [body["id"]]
    assert "secret" not in listed["items"][0]


def test_patch_changes_fields_and_reenabling_clears_the_failure(
    api: FlaskClient, engine: Engine
) -> None:
    webhook_id = create(api).get_json()["id"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE webhook SET enabled = false, failing_since = now(), disabled_at = now(),"
                " disabled_reason = 'failing' WHERE id = :id"
            ),
            {"id": webhook_id},
        )

    patched = api.patch(
        f"/api/v1/webhooks/{webhook_id}",
        json={"events": ["campaign.started"], "enabled": True},
        headers=AUTH,
    )

    assert patched.status_code == 200
    body = patched.get_json()
    assert body["events"] == ["campaign.started"]
    assert body["enabled"] is True
    assert body["failing_since"] is None and body["disabled_at"] is None


def test_delete_then_404(api: FlaskClient, engine: Engine) -> None:
    webhook_id = create(api).get_json()["id"]

    assert api.delete(f"/api/v1/webhooks/{webhook_id}", headers=AUTH).status_code == 204

    assert count(engine) == 0
    assert api.get(f"/api/v1/webhooks/{webhook_id}", headers=AUTH).status_code == 404
    assert api.delete(f"/api/v1/webhooks/{webhook_id}", headers=AUTH).status_code == 404
    assert api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=AUTH).status_code == 404
    patch = api.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": False}, headers=AUTH)
    assert patch.status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "http:///hook"}, "url"),
        ({"url": "http://hooks.example/hook"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["message.sent", "message.exploded"]}, "events"),
        ({"url": None}, "url"),
    ],
)
def test_bad_bodies_get_a_422_naming_the_field(
    api: FlaskClient, engine: Engine, fields: dict[str, Any], field: str
) -> None:
    answer = create(api, **fields)

    assert answer.status_code == 422
    assert field in errors_of(answer)
    assert count(engine) == 0


def test_an_unknown_event_is_named_by_its_position(api: FlaskClient) -> None:
    answer = create(api, events=["message.sent", "message.exploded"])

    assert "1" in {str(k) for k in errors_of(answer)["events"]}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://inside.example/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(
    strict_api: FlaskClient, engine: Engine, url: str
) -> None:
    answer = create(strict_api, url=url)

    assert answer.status_code == 422
    assert "url" in errors_of(answer)
    assert count(engine) == 0


def test_a_patch_to_a_refused_url_changes_nothing(
    api: FlaskClient, strict_api: FlaskClient
) -> None:
    webhook_id = create(api).get_json()["id"]

    answer = strict_api.patch(
        f"/api/v1/webhooks/{webhook_id}", json={"url": "http://10.1.1.1/"}, headers=AUTH
    )

    assert answer.status_code == 422
    assert "url" in errors_of(answer)
    assert (
        api.get(f"/api/v1/webhooks/{webhook_id}", headers=AUTH).get_json()["url"] == WEBHOOK["url"]
    )


def test_a_read_token_may_read_but_not_write(api: FlaskClient, engine: Engine) -> None:
    webhook_id = create(api).get_json()["id"]

    assert api.post("/api/v1/webhooks", json=WEBHOOK, headers=READ).status_code == 403
    patch = api.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": False}, headers=READ)
    assert patch.status_code == 403
    assert api.delete(f"/api/v1/webhooks/{webhook_id}", headers=READ).status_code == 403
    assert api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=READ).status_code == 200
    assert count(engine) == 1
    assert api.get(f"/api/v1/webhooks/{webhook_id}", headers=READ).get_json()["enabled"] is True


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    api: FlaskClient, engine: Engine
) -> None:
    webhook_id = create(api).get_json()["id"]
    with engine.begin() as conn:
        for status in (500, 502, 200):
            conn.execute(
                text(
                    "INSERT INTO webhook_attempt (webhook_id, event_id, status_code, latency_ms,"
                    " error, events) VALUES (:w, 7, :s, 12.5, NULL, 3)"
                ),
                {"w": webhook_id, "s": status},
            )

    first = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries?limit=2", headers=READ).get_json()
    rest = api.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries?before={first['next_before']}", headers=READ
    ).get_json()

    assert [d["status_code"] for d in first["items"]] == [200, 502]
    assert [d["status_code"] for d in rest["items"]] == [500]
    assert rest["next_before"] is None
    assert first["items"][0]["latency_ms"] == 12.5
    assert first["items"][0]["events"] == 3
