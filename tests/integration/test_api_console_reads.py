"""What the console reads and tries: campaigns newest first with progress, phone prefixes,
deliveries over time, the preview's sample, a test send of an unsaved campaign, the scope."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import READ_TOKEN, WRITE_TOKEN
from tests.support.factories import make_campaign, make_clients
from tests.support.fake_gateway import FakeGateway

WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ENDS_AT = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    server = FakeGateway().start()
    yield server
    server.stop()


@pytest.fixture
def api(settings: Settings, engine: Engine, gateway: FakeGateway) -> FlaskClient:
    configured = dataclasses.replace(settings, gateway_url=gateway.url, gateway_token=gateway.token)
    return create_app(configured, engine).test_client()


def add_messages(engine: Engine, cid: int, status: str, n: int, sent_at: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO message (campaign_id, status, sent_at)"
                " SELECT :c, :s, CAST(:at AS timestamptz) FROM generate_series(1, :n)"
            ),
            {"c": cid, "s": status, "n": n, "at": sent_at},
        )


def test_campaigns_newest_first_with_their_progress(api: FlaskClient, engine: Engine) -> None:
    ids = [make_campaign(engine, name=f"c{i}") for i in range(5)]
    add_messages(engine, ids[-1], "sent", 3)
    add_messages(engine, ids[-1], "pending", 1)
    first = api.get("/api/v1/campaigns?order=-id&limit=2", headers=READ).json
    assert [c["id"] for c in first["items"]] == [ids[4], ids[3]]
    progress = first["items"][0]["progress"]
    assert (progress["total"], progress["sent"], progress["pending"]) == (4, 3, 1)
    assert (progress["done"], progress["percent_done"]) == (3, 75.0)
    following = api.get(
        f"/api/v1/campaigns?order=-id&limit=2&after={first['next_after']}", headers=READ
    ).json
    assert [c["id"] for c in following["items"]] == [ids[2], ids[1]]
    oldest_first = api.get("/api/v1/campaigns?limit=2", headers=READ).json
    assert [c["id"] for c in oldest_first["items"]] == ids[:2]


def test_an_unknown_order_is_refused_at_its_field(api: FlaskClient) -> None:
    response = api.get("/api/v1/campaigns?order=name", headers=READ)
    assert response.status_code == 422
    assert "order" in response.json["errors"]["query"]


def test_clients_by_phone_prefix_spaces_and_brackets_ignored(
    api: FlaskClient, engine: Engine
) -> None:
    make_clients(engine, 30, first_phone=79120000000)
    make_clients(engine, 5, first_phone=79130000000)
    found = api.get("/api/v1/clients?phone=%2B7 (912) 000-000&limit=100", headers=READ).json
    assert [c["phone"] for c in found["items"]] == [f"+7912000000{i}" for i in range(10)]
    whole = api.get("/api/v1/clients?phone=79130000004", headers=READ).json["items"]
    assert [c["phone"] for c in whole] == ["+79130000004"]
    assert api.get("/api/v1/clients?phone=%2B7914", headers=READ).json["items"] == []


def test_a_phone_that_is_no_prefix_is_refused_at_its_field(api: FlaskClient) -> None:
    response = api.get("/api/v1/clients?phone=abc", headers=READ)
    assert response.status_code == 422
    assert response.json["errors"]["query"]["phone"] == [
        "must be digits of a phone, country code first"
    ]


def test_deliveries_over_time_by_bucket_and_since(api: FlaskClient, engine: Engine) -> None:
    cid = make_campaign(engine)
    add_messages(engine, cid, "sent", 4, "2026-12-01T10:00:01Z")
    add_messages(engine, cid, "delivered", 2, "2026-12-01T10:00:09Z")
    add_messages(engine, cid, "sent", 3, "2026-12-01T10:09:59Z")
    add_messages(engine, cid, "pending", 7)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE campaign_progress SET first_sent_at = '2026-12-01T10:00:01Z',"
                " last_sent_at = '2026-12-01T10:09:59Z' WHERE campaign_id = :c"
            ),
            {"c": cid},
        )
    chosen = api.get(f"/api/v1/campaigns/{cid}/timeline", headers=READ).json
    # Ten minutes in at most 60 points: 10 s buckets.
    assert chosen == {
        "bucket_s": 10,
        "points": [
            {"at": "2026-12-01T10:00:00+00:00", "sent": 6},
            {"at": "2026-12-01T10:09:50+00:00", "sent": 3},
        ],
    }
    since = api.get(
        f"/api/v1/campaigns/{cid}/timeline?bucket_s=60&since=2026-12-01T10:09:30Z", headers=READ
    ).json
    assert since == {"bucket_s": 60, "points": [{"at": "2026-12-01T10:09:00+00:00", "sent": 3}]}


def test_a_campaign_with_nothing_sent_has_an_empty_timeline(
    api: FlaskClient, engine: Engine
) -> None:
    cid = make_campaign(engine)
    assert api.get(f"/api/v1/campaigns/{cid}/timeline", headers=READ).json == {
        "bucket_s": 1,
        "points": [],
    }
    assert api.get("/api/v1/campaigns/999999/timeline", headers=READ).status_code == 404
    bad = api.get(f"/api/v1/campaigns/{cid}/timeline?bucket_s=0", headers=READ)
    assert bad.status_code == 422 and "bucket_s" in bad.json["errors"]["query"]


def test_the_preview_renders_the_text_for_its_first_recipient(
    api: FlaskClient, engine: Engine
) -> None:
    ids = make_clients(engine, 3, tags=["sample"], first_phone=79150000000)
    with engine.begin() as conn:
        conn.execute(text("UPDATE client SET opted_out = '{http}' WHERE id = :i"), {"i": ids[0]})
    body = {
        "name": "p",
        "channel": "http",
        "text": "Hi {{ name }}",
        "filter": {"tags": ["sample"]},
        "ends_at": ENDS_AT,
    }
    sample = api.post("/api/v1/campaigns/preview", json=body, headers=WRITE).json["sample"]
    # The first client opted out, so the second is the sample.
    assert sample == {
        "client_id": ids[1],
        "address": "+79150000001",
        "text": "Hi client1",
        "subject": None,
        "html": None,
    }
    nobody = {**body, "filter": {"tags": ["no-such-tag"]}}
    assert api.post("/api/v1/campaigns/preview", json=nobody, headers=WRITE).json["sample"] is None


def test_an_unsaved_campaign_test_send_goes_out_and_stores_nothing(
    api: FlaskClient, engine: Engine, gateway: FakeGateway
) -> None:
    (cid,) = make_clients(engine, 1, first_phone=79160000000, attributes={"name": "Ann"})
    body = {
        "name": "draft",
        "channel": "http",
        "text": "Hi {{ name }}",
        "ends_at": ENDS_AT,
        "test_address": "+7 916 000 00 00",
    }
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM campaign")).scalar_one()
    answer = api.post("/api/v1/campaigns/preview/test", json=body, headers=WRITE)
    assert answer.status_code == 200, answer.json
    assert answer.json["kind"] == "sent"
    assert (answer.json["address"], answer.json["client_id"]) == ("+79160000000", cid)
    (request,) = gateway.requests_for(answer.json["message_id"])
    assert request.body["text"] == "Hi Ann"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM campaign")).scalar_one() == before


def test_an_unsaved_campaign_test_send_is_checked_as_on_create(
    api: FlaskClient, gateway: FakeGateway
) -> None:
    body = {
        "name": "draft",
        "channel": "http",
        "text": "x",
        "ends_at": "2020-01-01T00:00:00Z",
        "test_address": "+79160000000",
    }
    answer = api.post("/api/v1/campaigns/preview/test", json=body, headers=WRITE)
    assert answer.status_code == 422
    assert "ends_at" in answer.json["errors"]["json"]
    missing = api.post(
        "/api/v1/campaigns/preview/test",
        json={**body, "ends_at": ENDS_AT, "test_address": ""},
        headers=WRITE,
    )
    assert missing.status_code == 422 and "test_address" in missing.json["errors"]["json"]
    assert gateway.total_requests() == 0
    read = api.post(
        "/api/v1/campaigns/preview/test", json={**body, "ends_at": ENDS_AT}, headers=READ
    )
    assert read.status_code == 403


def test_the_token_endpoint_names_its_scope(api: FlaskClient) -> None:
    assert api.get("/api/v1/token", headers=READ).json == {"scope": "read"}
    assert api.get("/api/v1/token", headers=WRITE).json == {"scope": "write"}
    assert api.get("/api/v1/token").status_code == 401
