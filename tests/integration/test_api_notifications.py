"""Notifications over HTTP: accept one or an array (202), refusals (422, nothing stored),
idempotency (replay, 409, concurrent retries), rendering, send windows, read, list, cancel."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import READ_TOKEN, WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
PHONE = "+79123456789"
HTTP = {
    "channel": "http",
    "to": {"phone": PHONE},
    "text": "Your code is {{ code }}",
    "variables": {"code": "123456"},
}


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Flask:
    return create_app(settings, engine)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def count(engine: Engine, where: str = "true") -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM notification WHERE {where}")) or 0)


def stored(engine: Engine, notification_id: int) -> Any:
    with engine.connect() as conn:
        query = text("SELECT * FROM notification WHERE id = :id")
        return conn.execute(query, {"id": notification_id}).mappings().one()


def post(api: FlaskClient, body: Any, expect: int = 202, key: str | None = None) -> Any:
    headers = {**AUTH, **({"Idempotency-Key": key} if key is not None else {})}
    response = api.post("/api/v1/notifications", json=body, headers=headers)
    assert response.status_code == expect, response.json
    return response


def make_client(api: FlaskClient, **fields: Any) -> dict[str, Any]:
    body = {
        "phone": PHONE,
        "email": "ann@example.org",
        "timezone": "Asia/Tokyo",
        "attributes": {"name": "Ann"},
        **fields,
    }
    response = api.post("/api/v1/clients", json=body, headers=AUTH)
    assert response.status_code == 201, response.json
    return cast(dict[str, Any], response.json)


def make_template(api: FlaskClient, **fields: Any) -> None:
    body = {"name": "code", "channel": "http", "text": "Hi {{ name }}, code {{ code }}", **fields}
    assert api.post("/api/v1/templates", json=body, headers=AUTH).status_code == 201


def errors(response: Any) -> dict[str, Any]:
    return cast(dict[str, Any], response.json["errors"]["json"])


def test_one_notification_is_stored_queued_with_its_text_rendered(
    api: FlaskClient, engine: Engine
) -> None:
    response = post(api, HTTP)

    assert response.json == {"id": response.json["id"], "status": "queued"}
    assert "Idempotent-Replayed" not in response.headers
    row = stored(engine, response.json["id"])
    assert (row["address"], row["text"], row["status"]) == (PHONE, "Your code is 123456", "queued")
    expires_in = row["expires_at"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < expires_in <= dt.timedelta(hours=1)


def test_a_client_gives_address_and_values_which_variables_override(
    api: FlaskClient, engine: Engine
) -> None:
    client = make_client(api)
    body = {
        "channel": "email",
        "to": {"client_id": client["id"]},
        "subject": "For {{ name }}",
        "text": "{{ name }} at {{ phone }}, {{ greeting }}",
        "html": "<b>{{ name }}</b>",
        "variables": {"greeting": "hello", "name": "<Annie>"},
    }

    row = stored(engine, post(api, body).json["id"])

    assert row["address"] == "ann@example.org" and row["client_id"] == client["id"]
    assert row["text"] == f"<Annie> at {PHONE}, hello"
    assert row["subject"] == "For <Annie>"
    assert row["html"] == "<b>&lt;Annie&gt;</b>"


def test_a_phone_is_stored_in_e164(api: FlaskClient, engine: Engine) -> None:
    row = stored(engine, post(api, {**HTTP, "to": {"phone": "7 912 345 67 89"}}).json["id"])

    assert row["address"] == PHONE


def test_a_template_is_rendered_with_client_attributes_and_named(
    api: FlaskClient, engine: Engine
) -> None:
    client = make_client(api)
    make_template(api)
    body = {
        "channel": "http",
        "to": {"client_id": client["id"]},
        "template": "code",
        "variables": {"code": 77},
    }

    notification_id = post(api, body).json["id"]

    row = stored(engine, notification_id)
    assert (row["text"], row["template"], row["address"]) == ("Hi Ann, code 77", "code", PHONE)
    shown = api.get(f"/api/v1/notifications/{notification_id}", headers=READ).json
    assert shown["template"] == "code" and shown["client_id"] == client["id"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": {"phone": "+7000"}}, "to"),
        ({"to": {"phone": PHONE, "email": "a@example.org"}}, "to"),
        ({"to": {}}, "to"),
        ({"to": {"email": "a@example.org"}}, "to"),
        ({"channel": "email", "to": {"email": "not-an-address"}, "subject": "s"}, "to"),
        ({"to": {"client_id": 999}}, "to"),
        ({"text": "Hi {{ nickname }}"}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "Hi {{ nick"}, "text"),
        ({"channel": "email", "to": {"email": "a@example.org"}}, "subject"),
        ({"html": "<b>x</b>"}, "html"),
        ({"template": "missing", "text": None}, "template"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2031-01-01T00:00:00"}, "expires_at"),
        ({"channel": "pigeon"}, "channel"),
        ({"variables": {"code": {"nested": 1}}}, "variables"),
        ({"send_window": {"start": "10:00", "end": "10:00"}}, "send_window"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
    ],
)
def test_an_invalid_notification_is_422_naming_the_field_and_stores_nothing(
    api: FlaskClient, engine: Engine, changes: dict[str, Any], field: str
) -> None:
    body = {key: value for key, value in {**HTTP, **changes}.items() if value is not None}

    response = post(api, body, expect=422)

    assert field in errors(response), response.json
    assert count(engine) == 0


def test_the_address_fields_are_named_inside_to(api: FlaskClient) -> None:
    bad_phone = post(api, {**HTTP, "to": {"phone": "+7000"}}, expect=422)
    bad_email = post(
        api, {**HTTP, "channel": "email", "subject": "s", "to": {"email": "nope"}}, expect=422
    )
    unknown = post(api, {**HTTP, "to": {"client_id": 999}}, expect=422)

    assert set(errors(bad_phone)["to"]) == {"phone"}
    assert set(errors(bad_email)["to"]) == {"email"}
    assert errors(unknown)["to"] == {"client_id": ["no client with id 999"]}


def test_a_client_without_the_channels_address_is_refused(api: FlaskClient) -> None:
    client = make_client(api, email=None)

    response = post(
        api,
        {**HTTP, "channel": "email", "subject": "s", "to": {"client_id": client["id"]}},
        expect=422,
    )

    assert "has no email" in errors(response)["to"]["client_id"][0]


def test_a_template_variable_without_a_value_names_variables(api: FlaskClient) -> None:
    make_template(api)

    response = post(
        api,
        {"channel": "http", "to": {"phone": PHONE}, "template": "code", "variables": {"code": 1}},
        expect=422,
    )

    assert errors(response) == {"variables": ["no value for variable 'name' (text)"]}


def test_a_template_of_another_channel_is_refused(api: FlaskClient) -> None:
    make_template(api, channel="email", subject="s")

    response = post(
        api,
        {
            "channel": "http",
            "to": {"phone": PHONE},
            "template": "code",
            "variables": {"code": 1, "name": "x"},
        },
        expect=422,
    )

    assert "for channel email" in errors(response)["template"][0]


def test_text_over_the_limit_once_rendered_is_refused(api: FlaskClient, engine: Engine) -> None:
    response = post(
        api, {**HTTP, "variables": {"code": "9" * 1000}, "text": "{{ code }}" * 6}, expect=422
    )

    assert "at most 5000" in errors(response)["text"][0]
    assert count(engine) == 0


def test_a_send_window_sets_not_before_to_its_next_opening(
    api: FlaskClient, engine: Engine
) -> None:
    now = dt.datetime.now(dt.UTC)
    closed_start = (now + dt.timedelta(hours=2)).strftime("%H:%M")
    closed_end = (now + dt.timedelta(hours=3)).strftime("%H:%M")
    body = {
        **HTTP,
        "expires_at": (now + dt.timedelta(hours=5)).isoformat(),
        "send_window": {"start": closed_start, "end": closed_end, "timezone": "UTC"},
    }

    row = stored(engine, post(api, body).json["id"])

    expected = (now + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    assert row["not_before"] == expected


def test_an_open_send_window_in_the_clients_zone_means_now(
    api: FlaskClient, engine: Engine
) -> None:
    client = make_client(api, timezone="Asia/Tokyo")
    tokyo_now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9)))
    start = (tokyo_now - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (tokyo_now + dt.timedelta(hours=1)).strftime("%H:%M")
    before = dt.datetime.now(dt.UTC)
    body = {**HTTP, "to": {"client_id": client["id"]}, "send_window": {"start": start, "end": end}}

    row = stored(engine, post(api, body).json["id"])

    assert before <= row["not_before"] <= dt.datetime.now(dt.UTC)


def test_a_window_opening_after_expiry_is_refused(api: FlaskClient, engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    start = (now + dt.timedelta(hours=2)).strftime("%H:%M")
    end = (now + dt.timedelta(hours=3)).strftime("%H:%M")
    body = {**HTTP, "send_window": {"start": start, "end": end, "timezone": "UTC"}}

    response = post(api, body, expect=422)

    assert "send_window" in errors(response)
    assert count(engine) == 0


def test_a_retry_with_the_same_key_replays_the_first_notification(
    api: FlaskClient, engine: Engine
) -> None:
    first = post(api, HTTP, key="order-17")
    again = post(api, {**HTTP}, key="order-17")

    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(engine) == 1


def test_the_same_key_with_another_body_is_409(api: FlaskClient, engine: Engine) -> None:
    post(api, HTTP, key="order-17")

    response = post(api, {**HTTP, "text": "other"}, expect=409, key="order-17")

    assert "another body" in response.json["message"]
    assert count(engine) == 1


def test_eight_concurrent_requests_with_one_key_store_one_notification(
    app: Flask, engine: Engine
) -> None:
    answers: list[Any] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/notifications", json=HTTP, headers={**AUTH, "Idempotency-Key": "race"}
        )
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 8
    assert {status for status, _ in answers} == {202}
    assert len({body["id"] for _, body in answers}) == 1
    assert count(engine) == 1


def test_a_mixed_array_stores_the_valid_items_and_reports_the_others(
    api: FlaskClient, engine: Engine
) -> None:
    body = [
        HTTP,
        {**HTTP, "to": {"phone": "+7000"}},
        {**HTTP, "text": "Hi {{ nobody }}"},
        {**HTTP, "idempotency_key": "k1"},
    ]

    items = post(api, body).json["items"]

    assert [set(item) for item in items] == [
        {"id", "status"},
        {"errors"},
        {"errors"},
        {"id", "status"},
    ]
    assert "to" in items[1]["errors"] and "text" in items[2]["errors"]
    assert count(engine) == 2
    assert stored(engine, items[3]["id"])["idempotency_key"] == "k1"


def test_an_array_item_reusing_a_key_with_another_body_is_that_items_error(
    api: FlaskClient, engine: Engine
) -> None:
    first = post(api, [{**HTTP, "idempotency_key": "k1"}]).json["items"][0]

    items = post(
        api,
        [
            {**HTTP, "idempotency_key": "k1"},
            {**HTTP, "text": "changed", "idempotency_key": "k1"},
            HTTP,
        ],
    ).json["items"]

    assert items[0] == first
    assert list(items[1]["errors"]) == ["idempotency_key"]
    assert "id" in items[2]
    assert count(engine) == 2


def test_an_array_looks_up_clients_and_templates_once_each(
    api: FlaskClient, engine: Engine
) -> None:
    client = make_client(api)
    make_template(api)
    item = {
        "channel": "http",
        "to": {"client_id": client["id"]},
        "template": "code",
        "variables": {"code": 1},
    }
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", record)
    try:
        items = post(api, [item] * 1000).json["items"]
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert all("id" in result for result in items)
    assert count(engine) == 1000
    assert sum("FROM client" in s for s in statements) == 1
    assert sum("FROM template" in s for s in statements) == 1
    assert len(statements) <= 8


@pytest.mark.parametrize("body", [[HTTP] * 1001, [], [HTTP, "not an object"], "text", 5], ids=str)
def test_an_unacceptable_body_is_refused_whole(api: FlaskClient, engine: Engine, body: Any) -> None:
    post(api, body, expect=422)

    assert count(engine) == 0


def test_the_key_header_is_refused_with_an_array(api: FlaskClient, engine: Engine) -> None:
    response = post(api, [HTTP], expect=422, key="k")

    assert "idempotency_key" in errors(response)
    assert count(engine) == 0


def test_opted_out_clients_still_get_notifications(api: FlaskClient, engine: Engine) -> None:
    client = make_client(api, opted_out=["http"])

    post(api, {**HTTP, "to": {"client_id": client["id"]}})

    assert count(engine) == 1


def test_get_and_list_notifications(api: FlaskClient) -> None:
    ids = [post(api, HTTP).json["id"] for _ in range(3)]

    one = api.get(f"/api/v1/notifications/{ids[0]}", headers=READ)
    page = api.get("/api/v1/notifications?limit=2&status=queued", headers=READ).json
    rest = api.get(f"/api/v1/notifications?after={page['next_after']}", headers=READ).json
    none = api.get("/api/v1/notifications?status=sent", headers=READ).json

    assert one.status_code == 200
    assert set(one.json or {}) == {
        "id",
        "channel",
        "client_id",
        "address",
        "status",
        "attempts",
        "last_error",
        "template",
        "not_before",
        "expires_at",
        "created_at",
        "updated_at",
        "released_at",
        "sent_at",
    }
    assert [n["id"] for n in page["items"]] == ids[:2]
    assert [n["id"] for n in rest["items"]] == ids[2:] and rest["next_after"] is None
    assert none["items"] == []
    assert api.get("/api/v1/notifications/999999", headers=READ).status_code == 404


def test_cancel_a_queued_notification(api: FlaskClient, engine: Engine) -> None:
    notification_id = post(api, HTTP).json["id"]

    response = api.post(f"/api/v1/notifications/{notification_id}/cancel", headers=AUTH)

    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert stored(engine, notification_id)["status"] == "cancelled"
    again = api.post(f"/api/v1/notifications/{notification_id}/cancel", headers=AUTH)
    assert again.status_code == 409


def test_cancel_is_409_once_released_and_404_when_unknown(api: FlaskClient, engine: Engine) -> None:
    notification_id = post(api, HTTP).json["id"]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE notification SET released_at = now() WHERE id = :id"),
            {"id": notification_id},
        )

    released = api.post(f"/api/v1/notifications/{notification_id}/cancel", headers=AUTH)

    assert released.status_code == 409 and "released" in released.json["message"]
    assert stored(engine, notification_id)["status"] == "queued"
    assert api.post("/api/v1/notifications/999999/cancel", headers=AUTH).status_code == 404


def test_writes_need_the_write_scope(api: FlaskClient, engine: Engine) -> None:
    assert api.post("/api/v1/notifications", json=HTTP, headers=READ).status_code == 403
    assert api.post("/api/v1/notifications", json=HTTP).status_code == 401
    assert count(engine) == 0


def test_stats_count_notifications_by_channel_with_zeros(api: FlaskClient) -> None:
    post(api, HTTP)
    cancelled = post(api, HTTP).json["id"]
    api.post(f"/api/v1/notifications/{cancelled}/cancel", headers=AUTH)

    stats = api.get("/api/v1/stats", headers=READ).json["notifications"]

    zeros: dict[str, int | None] = {"queued": 0, "sent": 0, "failed": 0, "expired": 0}
    zeros |= {
        "cancelled": 0,
        "delivered": 0,
        "undelivered": 0,
        "awaiting_receipt": 0,
        "delivery_rate": None,
    }
    assert stats["by_channel"]["http"] == {**zeros, "queued": 1, "cancelled": 1}
    assert stats["by_channel"]["email"] == zeros
    assert stats["total"] == {**zeros, "queued": 1, "cancelled": 1}


def test_stats_tell_delivered_notifications_and_their_rate(
    api: FlaskClient, engine: Engine
) -> None:
    ids = [post(api, HTTP).json["id"] for _ in range(5)]
    with engine.begin() as conn:
        for notification_id, status in zip(
            ids, ["sent", "delivered", "delivered", "delivered", "undelivered"], strict=True
        ):
            conn.execute(
                text("UPDATE notification SET status = :s WHERE id = :id"),
                {"s": status, "id": notification_id},
            )

    http = api.get("/api/v1/stats", headers=READ).json["notifications"]["by_channel"]["http"]
    listed = api.get("/api/v1/notifications?status=delivered", headers=READ)

    assert {k: http[k] for k in ("sent", "delivered", "undelivered", "awaiting_receipt")} == {
        "sent": 5,
        "delivered": 3,
        "undelivered": 1,
        "awaiting_receipt": 1,
    }
    assert http["delivery_rate"] == 0.6
    assert listed.status_code == 200
    assert sorted(item["id"] for item in listed.json["items"]) == ids[1:4]
    assert api.get(f"/api/v1/notifications/{ids[4]}", headers=READ).json["status"] == "undelivered"


def test_an_sms_rendering_past_the_segment_limit_is_refused(
    api: FlaskClient, engine: Engine
) -> None:
    response = post(api, {**HTTP, "variables": {"code": "Ж" * 700}}, expect=422)

    assert errors(response)["text"] == ["renders to 11 segments (UCS-2, forced by 'Ж'); at most 10"]
    assert count(engine) == 0
    # 1,530 septets are exactly ten parts.
    post(api, {**HTTP, "text": "a" * 530 + "{{ code }}", "variables": {"code": "a" * 1000}})
    assert count(engine) == 1


def test_a_templated_sms_past_the_segment_limit_is_the_templates_fault(
    api: FlaskClient, engine: Engine
) -> None:
    make_template(api)
    body = {"channel": "http", "to": {"phone": PHONE}, "template": "code"}

    response = post(api, {**body, "variables": {"name": "€" * 800, "code": 1}}, expect=422)

    assert errors(response)["template"] == ["text renders to 11 segments (GSM-7); at most 10"]
    assert count(engine) == 0


def test_the_segment_limit_is_for_sms_only(api: FlaskClient, engine: Engine) -> None:
    body = {"channel": "email", "to": {"email": "ann@example.org"}, "subject": "S"}

    post(api, {**body, "text": "Ж" * 1000})

    assert count(engine) == 1
