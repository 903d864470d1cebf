"""Auth (401/403), public endpoints, /docs offline, /openapi.json, /metrics, 405, 413, /readyz."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from shared.db.engine import make_engine
from tests.conftest import READ_TOKEN, WRITE_TOKEN

WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {WRITE_TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {WRITE_TOKEN}x"},
    ],
)
def test_missing_or_invalid_tokens_are_401(api: FlaskClient, headers: dict[str, str]) -> None:
    response = api.get("/api/v1/clients", headers=headers)

    assert response.status_code == 401
    assert response.json["code"] == 401 and response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/clients"),
        ("put", "/api/v1/clients/1"),
        ("patch", "/api/v1/clients/1"),
        ("delete", "/api/v1/clients/1"),
        ("post", "/api/v1/clients/import"),
        ("post", "/api/v1/campaigns"),
        ("post", "/api/v1/campaigns/1/cancel"),
        ("post", "/api/v1/notifications"),
        ("post", "/api/v1/notifications/1/cancel"),
        ("post", "/api/v1/templates"),
        ("put", "/api/v1/templates/code"),
        ("delete", "/api/v1/templates/code"),
    ],
)
def test_writes_with_a_read_token_are_403_and_change_nothing(
    api: FlaskClient, engine: Engine, method: str, path: str
) -> None:
    response = getattr(api, method)(path, json={"phone": "+79123456789"}, headers=READ)

    assert response.status_code == 403
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM client")) == 0


def test_a_read_token_may_read(api: FlaskClient) -> None:
    assert api.get("/api/v1/clients", headers=READ).status_code == 200
    assert api.get("/api/v1/stats", headers=READ).status_code == 200
    assert api.get("/api/v1/notifications", headers=READ).status_code == 200
    assert api.get("/api/v1/templates", headers=READ).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
def test_operational_endpoints_need_no_token(api: FlaskClient, path: str) -> None:
    assert api.get(path).status_code == 200


def test_health_and_readiness_payloads(settings: Settings, engine: Engine) -> None:
    healthy = create_app(settings, engine).test_client()
    degraded = create_app(settings, engine, broker_ready=lambda: False).test_client()

    assert healthy.get("/healthz").json == {"status": "ok"}
    ready = healthy.get("/readyz")
    assert (ready.json["database"], ready.json["broker"]) == ("ok", "ok")
    not_ready = degraded.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json == {"status": "degraded", "database": "ok", "broker": "down"}


def test_docs_are_served_offline(api: FlaskClient) -> None:
    page = api.get("/docs")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE)
    for asset in ASSETS:
        assert f"/docs-static/{asset}" in html
        response = api.get(f"/docs-static/{asset}")
        assert response.status_code == 200
        assert len(response.data) > 10_000


def test_docs_page_config_turns_the_online_validator_off_and_names_no_other_host(
    api: FlaskClient,
) -> None:
    page = api.get("/docs", base_url="http://herald.test:8000")

    html = page.get_data(as_text=True)
    overrides = re.search(r"var override_config = (.+);$", html, re.MULTILINE)
    assert overrides, "the page no longer passes Swagger UI a config object"
    # Unset, Swagger UI's badge sends the spec's URL to validator.swagger.io.
    assert json.loads(overrides.group(1))["validatorUrl"] is None
    assert "validator.swagger.io" not in html
    urls = re.findall(r"https?://[^\s\"'<>)]+", html)
    assert all(url.startswith("http://herald.test:8000/") for url in urls), urls


def test_openapi_spec_declares_paths_bearer_auth_and_public_probes(api: FlaskClient) -> None:
    spec = api.get("/openapi.json").json

    assert spec["openapi"] == "3.0.3"
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    for path in (
        "/api/v1/clients",
        "/api/v1/clients/{client_id}",
        "/api/v1/clients/import",
        "/api/v1/campaigns/{campaign_id}/pause",
        "/api/v1/campaigns/{campaign_id}/messages",
        "/api/v1/campaigns/{campaign_id}/stats",
        "/api/v1/campaigns/{campaign_id}/retry-failed",
        "/api/v1/campaigns/preview",
        "/api/v1/stats",
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/notifications/{notification_id}/cancel",
        "/api/v1/templates",
        "/api/v1/templates/{name}",
    ):
        assert path in spec["paths"]
    assert "Recipients are fixed when a campaign starts" in spec["info"]["description"]
    patch = spec["paths"]["/api/v1/campaigns/{campaign_id}"]["patch"]["description"]
    assert "ends_at, rate_limit and send_window" in patch
    timezone = spec["components"]["schemas"]["Client"]["properties"]["timezone"]
    assert "Europe/Moscow" in timezone["enum"] and "localtime" not in timezone["enum"]
    refs = set(
        re.findall(
            r'"\$ref": "#/components/schemas/([^"]+)"',
            api.get("/openapi.json").get_data(as_text=True),
        )
    )
    assert refs <= set(spec["components"]["schemas"])


def test_405_keeps_the_allow_header(api: FlaskClient) -> None:
    response = api.delete("/api/v1/campaigns", headers=WRITE)

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.json["code"] == 405


def test_bodies_over_the_limit_are_413(settings: Settings, engine: Engine) -> None:
    small = create_app(dataclasses.replace(settings, max_request_bytes=1_000), engine)
    padding = "x" * 2_000

    response = small.test_client().post(
        "/api/v1/clients", json={"phone": "+79123456789", "email": padding}, headers=WRITE
    )
    upload = small.test_client().post(
        "/api/v1/clients/import", data="phone\n" + "+79123456789\n" * 200,
        content_type="text/csv", headers=WRITE,
    )  # fmt: skip

    assert response.status_code == 413
    assert upload.status_code == 413
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM client")) == 0


def test_metrics_label_routes_by_url_rule(api: FlaskClient) -> None:
    api.get("/api/v1/clients/5", headers=READ)
    api.get("/api/v1/clients/6", headers=READ)

    metrics = api.get("/metrics").get_data(as_text=True)

    assert (
        'herald_api_requests_total{method="GET",route="/api/v1/clients/<int:client_id>",'
        'status="404"} 2.0'
    ) in metrics
    assert "herald_api_request_duration_seconds_bucket" in metrics
    assert "/api/v1/clients/5" not in metrics


def test_a_database_outage_is_a_json_500_and_not_ready(settings: Settings) -> None:
    dead = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    api = create_app(settings, dead).test_client()

    listed = api.get("/api/v1/clients", headers=READ)
    ready = api.get("/readyz")

    assert listed.status_code == 500
    assert listed.json == {"code": 500, "status": "Internal Server Error"}
    assert ready.status_code == 503
    assert ready.json["database"] == "down"
