"""The API request id: on every request log line, stored on the campaign, sent with its event."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from shared.logging import JsonFormatter, secrets_of
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
CAMPAIGN = {
    "name": "logged",
    "channel": "http",
    "text": "Hi {{ phone }}",
    "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat(),
}

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def logged(settings: Settings) -> Iterator[Lines]:
    """Returns the JSON lines logged so far, formatted as the API's configure() does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api", secrets_of(settings)))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "services.api.requests"]


def test_each_request_logs_one_line_with_its_request_id_route_and_status(api, logged):
    response = api.get("/api/v1/campaigns/999", headers={**AUTH, "X-Request-ID": "ops-42.a"})

    assert response.headers["X-Request-ID"] == "ops-42.a"
    (line,) = request_lines(logged())
    assert line["correlation_id"] == "ops-42.a"
    assert line["route"] == "/api/v1/campaigns/<int:campaign_id>"
    assert line["status"] == 404
    assert line["message"] == "GET /api/v1/campaigns/999 404"


def test_a_malformed_request_id_is_replaced_by_a_generated_one(api, logged):
    response = api.get("/api/v1/campaigns", headers={**AUTH, "X-Request-ID": 'bad id {"x": 1}'})

    generated = response.headers["X-Request-ID"]
    assert generated != 'bad id {"x": 1}' and len(generated) == 32
    assert [line["correlation_id"] for line in request_lines(logged())] == [generated]


def test_probes_and_scrapes_are_not_logged(api, logged):
    for path in ("/healthz", "/metrics"):
        assert api.get(path).status_code == 200

    assert request_lines(logged()) == []


def test_the_request_id_is_stored_on_the_campaign_and_sent_with_its_event(api, engine):
    response = api.post(
        "/api/v1/campaigns", json=CAMPAIGN, headers={**AUTH, "X-Request-ID": "launch-spring-1"}
    )

    assert response.status_code == 201
    with engine.connect() as conn:
        stored = conn.scalar(
            text("SELECT correlation_id FROM campaign WHERE id = :id"), {"id": response.json["id"]}
        )
        headers = conn.scalar(text("SELECT headers FROM outbox"))
    assert stored == "launch-spring-1"
    assert headers["x-correlation-id"] == "launch-spring-1"


def test_the_bearer_token_never_reaches_the_log(api, logged):
    api.post("/api/v1/campaigns", json={"name": ""}, headers=AUTH)
    api.get("/api/v1/campaigns", headers={"Authorization": "Bearer wrong-token-value"})

    text_logged = json.dumps(logged())
    assert len(request_lines(logged())) == 2
    assert WRITE_TOKEN not in text_logged


def test_lines_logged_outside_a_request_carry_no_stale_request_id(api, logged):
    api.get("/api/v1/campaigns", headers={**AUTH, "X-Request-ID": "first-request"})

    logging.getLogger("tests").info("after the request")

    assert "correlation_id" not in logged()[-1]
