"""The SDK's pure parts: recipients from shorthand, request bodies, keys, batches, errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from herald_client import HeraldError, Notification
from herald_client.bodies import batches, keyed, notification, recipient
from herald_client.client import item_result


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("+79161234567", {"phone": "+79161234567"}),
        ("79161234567", {"phone": "79161234567"}),
        (" ann@example.org ", {"email": "ann@example.org"}),
        (42, {"client_id": 42}),
        ({"phone": "+7916"}, {"phone": "+7916"}),
    ],
)
def test_a_recipient_is_guessed_from_its_shape(
    to: str | int | dict[str, str], expected: dict[str, object]
) -> None:
    assert recipient(to) == expected


@pytest.mark.parametrize("to", ["ann", "", "client:42", True, 4.2])
def test_what_is_neither_a_phone_nor_an_address_nor_an_id_is_refused(to: object) -> None:
    with pytest.raises(ValueError):
        recipient(to)  # type: ignore[arg-type]


def test_a_body_leaves_out_what_was_not_given_and_writes_times_in_iso() -> None:
    at = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)

    body = notification("email", "a@b.org", "Hi", subject="S", expires_at=at)

    assert body == {
        "channel": "email",
        "to": {"email": "a@b.org"},
        "text": "Hi",
        "subject": "S",
        "expires_at": "2030-01-01T12:00:00+00:00",
    }


def test_every_item_gets_a_key_of_its_own_unless_it_brings_one() -> None:
    items: list[dict[str, Any]] = [
        {"to": "+7916", "text": "a"},
        {"to": 7, "idempotency_key": "mine"},
        {"to": "a@b"},
    ]

    prepared = keyed(items)

    assert [item["to"] for item in prepared] == [
        {"phone": "+7916"},
        {"client_id": 7},
        {"email": "a@b"},
    ]
    assert prepared[1]["idempotency_key"] == "mine"
    assert len({item["idempotency_key"] for item in prepared}) == 3
    assert "idempotency_key" not in items[0]


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (1000, [1000]), (1001, [1000, 1]), (2500, [1000, 1000, 500])],
)
def test_items_go_in_requests_of_at_most_a_thousand_in_order(count: int, sizes: list[int]) -> None:
    items = [{"n": n} for n in range(count)]

    parts = list(batches(items))

    assert [len(part) for part in parts] == sizes
    assert [item for part in parts for item in part] == items


def test_an_error_payload_gives_status_message_and_dotted_field_errors() -> None:
    body = {
        "code": 422,
        "status": "Unprocessable Entity",
        "message": "The request was invalid.",
        "errors": {"json": {"to": {"phone": ["Not a phone."]}, "text": ["Missing.", "Short."]}},
    }

    error = HeraldError.from_body(422, "UNPROCESSABLE ENTITY", body)

    assert error.status == 422
    assert error.message == "Unprocessable Entity: The request was invalid."
    assert error.field_errors == {"to.phone": ["Not a phone."], "text": ["Missing.", "Short."]}
    assert "to.phone: Not a phone." in str(error)


def test_an_error_without_a_json_body_still_says_its_status() -> None:
    error = HeraldError.from_body(403, "FORBIDDEN", "<html>")

    assert (error.status, error.message, error.field_errors) == (403, "FORBIDDEN", {})


def test_a_batch_answer_gives_a_notification_or_an_error_per_item() -> None:
    accepted = item_result({"id": 7, "status": "queued"})
    refused = item_result({"errors": {"text": ["Missing."]}})

    assert accepted == Notification(7, "queued", data={"id": 7, "status": "queued"})
    assert isinstance(refused, HeraldError)
    assert (refused.status, refused.field_errors) == (422, {"text": ["Missing."]})


def test_a_batch_item_whose_key_names_another_body_is_a_conflict() -> None:
    conflict = item_result({"errors": {"idempotency_key": ["used with another body"]}})

    assert isinstance(conflict, HeraldError)
    assert conflict.status == 409


@pytest.mark.parametrize(
    ("status", "is_final"),
    [("queued", False), ("sent", True), ("failed", True), ("expired", True), ("cancelled", True)],
)
def test_sent_failed_expired_and_cancelled_are_final(status: str, is_final: bool) -> None:
    assert Notification(1, status).is_final is is_final
