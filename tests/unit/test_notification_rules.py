"""Notification rules: request hash, address, covered variables, rendered lengths, first send."""

from __future__ import annotations

import datetime as dt

from shared.domain.channels import EMAIL, HTTP
from shared.domain.notifications import (
    address_for,
    expiry_reasons,
    first_send,
    length_reasons,
    render_contents,
    request_hash,
    uncovered_reasons,
)

NOW = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)


def test_the_hash_ignores_key_order_and_the_idempotency_key() -> None:
    one = request_hash({"a": 1, "b": {"x": 1, "y": 2}, "idempotency_key": "k1"})
    other = request_hash({"b": {"y": 2, "x": 1}, "a": 1, "idempotency_key": "k2"})

    assert one == other and len(one) == 64
    assert request_hash({"a": 2}) != request_hash({"a": 1})


def test_the_address_is_the_given_one_or_the_clients() -> None:
    client = {"phone": "+79123456789", "email": None}

    assert address_for(HTTP, {"phone": "+1"}, None) == ("+1", {})
    assert address_for(HTTP, {"client_id": 5}, client) == ("+79123456789", {})
    assert "has no email" in address_for(EMAIL, {"client_id": 5}, client)[1]["to"]["client_id"][0]
    assert address_for(EMAIL, {"phone": "+1"}, None)[1] == {
        "to": ["channel email sends to a email, not to phone"]
    }


def test_variables_without_a_value_are_named_under_the_field() -> None:
    contents = {"text": "Hi {{ name }} {{ code }}", "subject": None}

    assert uncovered_reasons(contents, {"name": "A", "code": 0}) == {}
    assert uncovered_reasons(contents, {"name": None}) == {
        "text": ["no value for variable 'code'", "no value for variable 'name'"]
    }
    assert uncovered_reasons(contents, {"name": "A"}, "variables") == {
        "variables": ["no value for variable 'code' (text)"]
    }


def test_html_values_are_escaped_and_rendered_lengths_checked() -> None:
    rendered = render_contents({"text": "{{ v }}", "html": "<p>{{ v }}</p>"}, {"v": "<b>"})

    assert rendered == {"text": "<b>", "html": "<p>&lt;b&gt;</p>"}
    assert length_reasons({"text": "x" * 5000}) == {}
    assert "at most 5000" in length_reasons({"text": "x" * 5001})["text"][0]
    assert list(length_reasons({"subject": "x" * 999}, "template")) == ["template"]


def test_first_send_is_the_next_opening_unless_it_comes_too_late() -> None:
    later = NOW + dt.timedelta(hours=6)
    window = (dt.time(14), dt.time(16), "UTC")

    assert first_send(NOW, later, None) == (None, {})
    assert first_send(NOW, later, window) == (NOW.replace(hour=14), {})
    assert first_send(NOW, later, (dt.time(10), dt.time(13), "UTC")) == (NOW, {})
    assert "send_window" in first_send(NOW, NOW + dt.timedelta(hours=2), window)[1]
    # 12:00 UTC is 21:00 in Tokyo (UTC+9): a 22:00-06:00 window opens at 13:00 UTC.
    tokyo = first_send(NOW, later, (dt.time(22), dt.time(6), "Asia/Tokyo"))
    assert tokyo == (NOW.replace(hour=13), {})


def test_expiry_must_lie_ahead() -> None:
    assert expiry_reasons(NOW, NOW + dt.timedelta(seconds=1)) == {}
    assert expiry_reasons(NOW, NOW) == {"expires_at": ["must be in the future"]}
