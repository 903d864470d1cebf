"""Receipts over HTTP: a receipts token only, one or an array, 422 naming the field, nothing
stored on refusal, and what is accepted recorded in the outbox for the stats service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from shared.messaging.envelopes import ReceiptBatch
from tests.conftest import READ_TOKEN, RECEIPTS_TOKEN, WRITE_TOKEN

pytestmark = pytest.mark.integration

RECEIPTS = {"Authorization": f"Bearer {RECEIPTS_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT routing_key, payload FROM outbox ORDER BY id")))


def test_an_array_of_gateway_receipts_is_recorded_as_one_batch(api: FlaskClient, engine: Engine):
    body = [
        {"id": 11, "status": "delivered", "at": "2026-12-03T10:00:00+00:00"},
        {"id": 12, "status": "rejected", "error": "absent subscriber"},
        {"id": 13, "status": "expired"},
    ]
    response = api.post("/api/v1/receipts/http", json=body, headers=RECEIPTS)

    assert response.status_code == 202, response.json
    assert response.json["accepted"] == 3
    (row,) = outbox(engine)
    assert row.routing_key == "receipt.http"
    receipts = ReceiptBatch.decode(json.dumps(row.payload).encode()).receipts
    assert [(r.id, r.status, r.error) for r in receipts] == [
        (11, "delivered", None),
        (12, "undelivered", "rejected: absent subscriber"),
        (13, "undelivered", "expired"),
    ]
    assert receipts[0].at == 1_796_292_000.0


def test_one_receipt_as_an_object_is_accepted(api: FlaskClient, engine: Engine):
    response = api.post(
        "/api/v1/receipts/http", json={"id": 5, "status": "undelivered"}, headers=RECEIPTS
    )
    assert response.status_code == 202
    assert len(outbox(engine)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([{"id": 1, "status": "delivered"}, {"id": 2, "status": "lost"}], "1.status"),
        ([{"id": "seven", "status": "delivered"}], "0.id"),
        ([{"id": 0, "status": "delivered"}], "0.id"),
        ([{"status": "delivered"}], "0.id"),
        ([{"id": 1, "status": "delivered", "at": "yesterday"}], "0.at"),
        ([{"id": 1, "status": "delivered", "colour": "red"}], "0.colour"),
    ],
)
def test_a_bad_receipt_is_refused_naming_its_field_and_nothing_is_stored(
    api: FlaskClient, engine: Engine, body: Any, field: str
):
    response = api.post("/api/v1/receipts/http", json=body, headers=RECEIPTS)

    assert response.status_code == 422
    assert field in str(response.json["errors"]), response.json
    assert outbox(engine) == []


def test_an_empty_or_oversized_array_is_refused(api: FlaskClient, engine: Engine):
    too_many = [{"id": i + 1, "status": "delivered"} for i in range(1001)]
    for body in ([], too_many):
        response = api.post("/api/v1/receipts/http", json=body, headers=RECEIPTS)
        assert response.status_code == 422, response.json
    assert outbox(engine) == []


def test_other_tokens_cannot_post_receipts_and_a_receipts_token_can_do_nothing_else(
    api: FlaskClient, engine: Engine
):
    body = {"id": 1, "status": "delivered"}
    for token in (WRITE_TOKEN, READ_TOKEN):
        headers = {"Authorization": f"Bearer {token}"}
        assert api.post("/api/v1/receipts/http", json=body, headers=headers).status_code == 403
    assert api.post("/api/v1/receipts/http", json=body).status_code == 401
    assert api.get("/api/v1/campaigns", headers=RECEIPTS).status_code == 403
    assert api.post("/api/v1/clients", json={}, headers=RECEIPTS).status_code == 403
    assert outbox(engine) == []


def test_email_receipts_take_herald_ids_or_its_message_id_header(api: FlaskClient, engine: Engine):
    body = [
        {"message_id": "<herald-21@example.org>", "type": "complaint"},
        {"message_id": 22, "type": "bounce", "permanent": True, "error": "550 no such user"},
        {"message_id": "23", "type": "bounce", "permanent": False},
    ]
    response = api.post("/api/v1/receipts/email", json=body, headers=RECEIPTS)

    assert response.status_code == 202, response.json
    assert response.json == {"accepted": 2, "unchanged": 1}
    (row,) = outbox(engine)
    assert row.routing_key == "receipt.email"
    assert [(r["id"], r["status"], r["opt_out"]) for r in row.payload["receipts"]] == [
        (21, "undelivered", True),
        (22, "undelivered", True),
    ]
    assert row.payload["receipts"][1]["error"] == "permanent bounce: 550 no such user"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message_id": "<someone-else@example.org>", "type": "bounce"}, "message_id"),
        ({"message_id": 3}, "type"),
        ({"message_id": 3, "type": "spam"}, "type"),
        ({"message_id": 3, "type": "bounce", "permanent": "yes"}, "permanent"),
    ],
)
def test_a_bad_email_receipt_is_refused_naming_its_field(
    api: FlaskClient, engine: Engine, body: Any, field: str
):
    response = api.post("/api/v1/receipts/email", json=body, headers=RECEIPTS)

    assert response.status_code == 422
    assert field in str(response.json["errors"]), response.json
    assert outbox(engine) == []
