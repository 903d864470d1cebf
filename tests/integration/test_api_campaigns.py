"""Campaigns over HTTP: create with its outbox event, validation 422, edits, transitions, 409."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
CAMPAIGN = {
    "name": "Spring sale",
    "channel": "http",
    "text": "Hi {{ phone }}, your code is {{ operator_code }}",
    "ends_at": (LATER + dt.timedelta(days=1)).isoformat(),
}


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    return create_app(settings, engine).test_client()


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def events(engine: Engine) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT routing_key, payload, headers FROM outbox ORDER BY id"))
        return [(row.routing_key, row.payload, row.headers) for row in rows]


def create(api: FlaskClient, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/campaigns", json={**CAMPAIGN, **fields}, headers=AUTH)
    assert response.status_code == 201, response.json
    return cast(dict[str, Any], response.json)


def set_status(engine: Engine, campaign_id: int, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE campaign SET status = :s,"
                " started_at = CASE WHEN :s = 'scheduled' THEN NULL ELSE now() END"
                " WHERE id = :id"
            ),
            {"s": status, "id": campaign_id},
        )


def test_create_writes_campaign_progress_and_one_event_together(
    api: FlaskClient, engine: Engine
) -> None:
    body = {
        **CAMPAIGN,
        "starts_at": LATER.isoformat(),
        "filter": {"tags": ["vip"], "operator_codes": ["912"]},
        "send_window": {"start": "21:00", "end": "09:00"},
        "rate_limit": 100,
    }

    response = api.post(
        "/api/v1/campaigns", json=body, headers={**AUTH, "X-Request-ID": "req-42.a_b"}
    )

    assert response.status_code == 201
    campaign = response.json
    assert campaign["status"] == "scheduled"
    assert campaign["filter"] == {"tags": ["vip"], "operator_codes": ["912"]}
    assert campaign["send_window"] == {"start": "21:00", "end": "09:00"}
    assert response.headers["X-Request-ID"] == "req-42.a_b"
    assert events(engine) == [
        ("campaign.created", {"campaign_id": campaign["id"]}, {"x-correlation-id": "req-42.a_b"})
    ]
    with engine.connect() as conn:
        progress = conn.execute(text("SELECT total, pending, sent FROM campaign_progress")).one()
    assert tuple(progress) == (0, 0, 0)


def test_starts_at_defaults_to_now(api: FlaskClient) -> None:
    before = dt.datetime.now(dt.UTC)

    campaign = create(api)

    assert dt.datetime.fromisoformat(campaign["starts_at"]) >= before - dt.timedelta(seconds=1)


def test_a_malformed_request_id_is_replaced(api: FlaskClient, engine: Engine) -> None:
    response = api.post(
        "/api/v1/campaigns", json=CAMPAIGN, headers={**AUTH, "X-Request-ID": "bad id; drop"}
    )

    generated = response.headers["X-Request-ID"]
    assert generated != "bad id; drop" and len(generated) == 32
    assert events(engine)[0][2] == {"x-correlation-id": generated}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2031-01-01T00:00:00"}, "ends_at"),
        ({"starts_at": LATER.isoformat(), "ends_at": LATER.isoformat()}, "ends_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"channel": "email"}, "subject"),
        ({"channel": "pigeon"}, "channel"),
        ({"text": "Hi {{ nickname }}"}, "text"),
        ({"text": "Hi {{ nick"}, "text"),
        ({"channel": "email", "subject": "For {{ nickname }}"}, "subject"),
        ({"send_window": {"start": "10:00", "end": "10:00"}}, "send_window"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"name": "a\x00b"}, "name"),
        ({"status": "running"}, "status"),
    ],
)
def test_invalid_campaigns_are_422_and_write_nothing(
    api: FlaskClient, engine: Engine, changes: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/campaigns", json={**CAMPAIGN, **changes}, headers=AUTH)

    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert [count(engine, t) for t in ("campaign", "campaign_progress", "outbox")] == [0, 0, 0]


def test_a_variable_is_known_once_some_client_has_that_attribute(
    api: FlaskClient, engine: Engine
) -> None:
    body = {"text": "Hi {{ first_name }}", "channel": "email", "subject": "{{ phone }}"}
    assert api.post("/api/v1/campaigns", json={**CAMPAIGN, **body}, headers=AUTH).status_code == 422
    api.post(
        "/api/v1/clients",
        json={"phone": "+79123456789", "attributes": {"first_name": "Ann"}},
        headers=AUTH,
    )

    response = api.post("/api/v1/campaigns", json={**CAMPAIGN, **body}, headers=AUTH)

    assert response.status_code == 201
    assert count(engine, "outbox") == 1


def test_get_and_unknown_campaign(api: FlaskClient) -> None:
    campaign = create(api)

    assert api.get(f"/api/v1/campaigns/{campaign['id']}", headers=AUTH).json == campaign
    assert api.get("/api/v1/campaigns/999", headers=AUTH).status_code == 404
    assert api.post("/api/v1/campaigns/999/pause", headers=AUTH).status_code == 404


def test_patch_a_scheduled_campaign_records_an_update(api: FlaskClient, engine: Engine) -> None:
    campaign = create(api, send_window={"start": "09:00", "end": "18:00"})

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        json={"rate_limit": 5, "send_window": None},
        headers=AUTH,
    )

    assert response.status_code == 200
    assert (response.json["rate_limit"], response.json["send_window"]) == (5, None)
    assert response.json["text"] == CAMPAIGN["text"]
    assert [event[0] for event in events(engine)] == ["campaign.created", "campaign.updated"]


def test_patch_is_checked_against_the_stored_campaign(api: FlaskClient, engine: Engine) -> None:
    campaign = create(api, starts_at=LATER.isoformat())

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        json={"ends_at": (LATER - dt.timedelta(hours=1)).isoformat()},
        headers=AUTH,
    )

    assert response.status_code == 422
    assert "ends_at" in response.json["errors"]["json"]
    assert count(engine, "outbox") == 1


def test_put_replaces_a_scheduled_campaign(api: FlaskClient) -> None:
    campaign = create(api, rate_limit=10, filter={"tags": ["vip"]})

    response = api.put(
        f"/api/v1/campaigns/{campaign['id']}", json={**CAMPAIGN, "name": "Renamed"}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json["name"] == "Renamed"
    assert response.json["rate_limit"] is None
    assert response.json["filter"] == {"tags": [], "operator_codes": []}


@pytest.mark.parametrize("status", ["cancelled", "completed", "expired"])
def test_finished_campaigns_cannot_be_edited(api: FlaskClient, engine: Engine, status: str) -> None:
    campaign = create(api)
    set_status(engine, campaign["id"], status)

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"rate_limit": 5}, headers=AUTH
    )

    assert response.status_code == 409
    assert status in response.json["message"]
    assert count(engine, "outbox") == 1


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_live_campaign_takes_new_end_rate_and_window(
    api: FlaskClient, engine: Engine, status: str
) -> None:
    campaign = create(api, name="Live")
    set_status(engine, campaign["id"], status)
    new_end = (LATER + dt.timedelta(days=3)).isoformat()

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        # An unchanged field may come along: only changes are refused.
        json={
            "ends_at": new_end,
            "rate_limit": 7,
            "send_window": {"start": "08:00", "end": "20:00"},
            "name": "Live",
        },
        headers=AUTH,
    )

    assert response.status_code == 200, response.json
    stored = api.get(f"/api/v1/campaigns/{campaign['id']}", headers=AUTH).json
    assert dt.datetime.fromisoformat(stored["ends_at"]) == dt.datetime.fromisoformat(new_end)
    assert (stored["rate_limit"], stored["send_window"]) == (7, {"start": "08:00", "end": "20:00"})
    assert stored["status"] == status
    assert [event[0] for event in events(engine)] == ["campaign.created", "campaign.updated"]


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_live_campaign_refuses_other_changes_naming_them(
    api: FlaskClient, engine: Engine, status: str
) -> None:
    campaign = create(api)
    set_status(engine, campaign["id"], status)

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        json={"text": "Other", "filter": {"tags": ["vip"]}, "rate_limit": 9},
        headers=AUTH,
    )

    assert response.status_code == 409
    assert "filter" in response.json["message"] and "text" in response.json["message"]
    assert set(response.json["errors"]["json"]) == {"filter", "text"}
    stored = api.get(f"/api/v1/campaigns/{campaign['id']}", headers=AUTH).json
    assert (stored["text"], stored["rate_limit"]) == (CAMPAIGN["text"], None)
    assert count(engine, "outbox") == 1


def test_a_campaign_paused_before_its_start_may_still_change_anything(api: FlaskClient) -> None:
    campaign = create(api)
    api.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=AUTH)

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        json={"name": "New", "filter": {"tags": ["vip"]}},
        headers=AUTH,
    )

    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["status"]) == ("New", "paused")


def test_a_running_campaign_cannot_be_replaced_or_ended_in_the_past(
    api: FlaskClient, engine: Engine
) -> None:
    now = dt.datetime.now(dt.UTC)
    campaign = create(api, starts_at=(now - dt.timedelta(days=2)).isoformat())
    set_status(engine, campaign["id"], "running")
    path = f"/api/v1/campaigns/{campaign['id']}"
    yesterday = (now - dt.timedelta(days=1)).isoformat()

    replaced = api.put(path, json=CAMPAIGN, headers=AUTH)
    ended = api.patch(path, json={"ends_at": yesterday}, headers=AUTH)

    assert replaced.status_code == 409
    assert ended.status_code == 422
    assert ended.json["errors"]["json"]["ends_at"] == ["must be in the future"]
    assert count(engine, "outbox") == 1


def test_a_campaign_paused_before_its_start_resumes_waiting_for_it(
    api: FlaskClient, engine: Engine
) -> None:
    cid = create(api)["id"]

    paused = api.post(f"/api/v1/campaigns/{cid}/pause", headers=AUTH)
    resumed = api.post(f"/api/v1/campaigns/{cid}/resume", headers=AUTH)

    assert (paused.json["status"], resumed.json["status"]) == ("paused", "scheduled")


def test_pause_resume_cancel_record_events_and_are_idempotent(
    api: FlaskClient, engine: Engine
) -> None:
    cid = create(api)["id"]
    set_status(engine, cid, "running")

    paused = api.post(f"/api/v1/campaigns/{cid}/pause", headers=AUTH)
    again = api.post(f"/api/v1/campaigns/{cid}/pause", headers=AUTH)
    resumed = api.post(f"/api/v1/campaigns/{cid}/resume", headers=AUTH)
    cancelled = api.post(f"/api/v1/campaigns/{cid}/cancel", headers=AUTH)

    assert [r.status_code for r in (paused, again, resumed, cancelled)] == [200] * 4
    assert [r.json["status"] for r in (paused, again, resumed, cancelled)] == [
        "paused",
        "paused",
        "running",
        "cancelled",
    ]
    assert cancelled.json["finished_at"] is not None
    assert [event[0] for event in events(engine)] == [
        "campaign.created",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
    ]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("cancelled", "resume"),
        ("cancelled", "pause"),
        ("completed", "cancel"),
        ("expired", "resume"),
    ],
)
def test_illegal_transitions_are_409_with_the_reason(
    api: FlaskClient, engine: Engine, status: str, action: str
) -> None:
    cid = create(api)["id"]
    set_status(engine, cid, status)

    response = api.post(f"/api/v1/campaigns/{cid}/{action}", headers=AUTH)

    assert response.status_code == 409
    assert action in response.json["message"] and status in response.json["message"]
    assert count(engine, "outbox") == 1


@pytest.mark.parametrize(
    ("status", "code"), [("running", 409), ("paused", 409), ("cancelled", 204)]
)
def test_delete_refuses_active_campaigns(
    api: FlaskClient, engine: Engine, status: str, code: int
) -> None:
    cid = create(api)["id"]
    set_status(engine, cid, status)

    response = api.delete(f"/api/v1/campaigns/{cid}", headers=AUTH)

    assert response.status_code == code
    assert count(engine, "campaign") == (1 if code == 409 else 0)
    assert count(engine, "campaign_progress") == (1 if code == 409 else 0)


def test_list_filters_and_pages(api: FlaskClient, engine: Engine) -> None:
    ids = [create(api, name=f"c{n}")["id"] for n in range(3)]
    email = create(api, channel="email", subject="Hello")["id"]
    set_status(engine, ids[0], "running")

    def listed(query: str) -> list[int]:
        return [c["id"] for c in api.get(f"/api/v1/campaigns?{query}", headers=AUTH).json["items"]]

    assert listed("status=running") == [ids[0]]
    assert listed("channel=email") == [email]
    assert listed("status=scheduled&channel=http") == ids[1:]
    first = api.get("/api/v1/campaigns?limit=3", headers=AUTH).json
    assert first["next_after"] == ids[2]
    assert listed(f"limit=3&after={first['next_after']}") == [email]
    assert api.get("/api/v1/campaigns?status=nope", headers=AUTH).status_code == 422


def test_messages_are_listed_by_status_in_keyset_pages(api: FlaskClient, engine: Engine) -> None:
    cid = create(api)["id"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO message (campaign_id, status, attempts, last_error) "
                "SELECT :c, s, 1, NULL FROM unnest(ARRAY['sent','failed','sent','pending']) AS s"
            ),
            {"c": cid},
        )

    sent = api.get(f"/api/v1/campaigns/{cid}/messages?status=sent&limit=1", headers=AUTH).json
    rest = api.get(
        f"/api/v1/campaigns/{cid}/messages?status=sent&after={sent['next_after']}", headers=AUTH
    ).json

    assert [m["status"] for m in sent["items"] + rest["items"]] == ["sent", "sent"]
    assert rest["next_after"] is None
    assert set(sent["items"][0]) == {
        "id", "client_id", "status", "attempts", "last_error",
        "not_before", "queued_at", "sent_at", "updated_at",
    }  # fmt: skip
    assert api.get("/api/v1/campaigns/999/messages", headers=AUTH).status_code == 404


def test_an_sms_text_over_the_segment_limit_for_some_recipients_is_422(
    api: FlaskClient, engine: Engine
) -> None:
    for phone, bio in (("+79123456780", "short"), ("+79123456781", "Ж" * 700)):
        api.post("/api/v1/clients", json={"phone": phone, "attributes": {"bio": bio}}, headers=AUTH)

    response = api.post(
        "/api/v1/campaigns", json={**CAMPAIGN, "text": "Hi {{ bio }}"}, headers=AUTH
    )

    assert response.status_code == 422
    assert response.json["errors"]["json"]["text"] == [
        "renders to 11 segments for 1 recipient (UCS-2, forced by 'Ж'); at most 10"
    ]
    assert [count(engine, t) for t in ("campaign", "campaign_progress", "outbox")] == [0, 0, 0]


def test_the_segment_limit_counts_only_the_campaign_audience(
    api: FlaskClient, engine: Engine
) -> None:
    api.post(
        "/api/v1/clients",
        json={"phone": "+79123456781", "tags": ["vip"], "attributes": {"bio": "Ж" * 700}},
        headers=AUTH,
    )
    api.post(
        "/api/v1/clients",
        json={"phone": "+79123456782", "tags": ["news"], "attributes": {"bio": "Ж"}},
        headers=AUTH,
    )

    create(api, text="Hi {{ bio }}", filter={"tags": ["news"]})
    email = {"channel": "email", "subject": "S", "text": "Hi {{ bio }}"}
    assert count(engine, "campaign") == 1
    assert (
        api.post("/api/v1/campaigns", json={**CAMPAIGN, **email}, headers=AUTH).status_code == 201
    )


def test_a_patch_that_makes_the_sms_too_long_is_422_and_changes_nothing(
    api: FlaskClient, engine: Engine
) -> None:
    api.post(
        "/api/v1/clients",
        json={"phone": "+79123456781", "attributes": {"bio": "Ж" * 700}},
        headers=AUTH,
    )
    campaign = create(api, text="Hi")

    response = api.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"text": "Hi {{ bio }}"}, headers=AUTH
    )

    assert response.status_code == 422
    assert "renders to 11 segments for 1 recipient" in response.json["errors"]["json"]["text"][0]
    assert api.get(f"/api/v1/campaigns/{campaign['id']}", headers=AUTH).json["text"] == "Hi"


def test_the_segment_limit_is_the_operators_setting(settings: Settings, engine: Engine) -> None:
    strict = create_app(dataclasses.replace(settings, sms_max_segments=1), engine).test_client()
    strict.post("/api/v1/clients", json={"phone": "+79123456781"}, headers=AUTH)
    two_parts = {**CAMPAIGN, "text": "a" * 161}

    refused = strict.post("/api/v1/campaigns", json=two_parts, headers=AUTH)
    notification = strict.post(
        "/api/v1/notifications",
        json={"channel": "http", "address": "+79123456781", "text": "a" * 161},
        headers=AUTH,
    )
    campaign = strict.post("/api/v1/campaigns", json={**CAMPAIGN, "text": "a"}, headers=AUTH)
    patched = strict.patch(
        f"/api/v1/campaigns/{campaign.json['id']}", json={"text": "a" * 161}, headers=AUTH
    )

    assert refused.status_code == notification.status_code == patched.status_code == 422
    assert refused.json["errors"]["json"]["text"] == [
        "renders to 2 segments for 1 recipient (GSM-7); at most 1"
    ]
    assert count(engine, "campaign") == 1 and count(engine, "notification") == 0
