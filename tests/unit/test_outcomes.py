import pytest

from shared.domain.outcomes import (
    PERMANENT,
    SENT,
    TRANSIENT,
    classify_http,
    connection_failed,
    timed_out,
)

OK = b'{"code": 0, "message": "OK"}'


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, OK, SENT),
        (200, b'{"code":0}', SENT),
        (200, b'{"code": 1, "message": "queue full"}', TRANSIENT),
        (200, b'{"code": false}', TRANSIENT),
        (200, b'{"code": "0"}', TRANSIENT),
        (200, b'{"code": 0, "mess', TRANSIENT),
        (200, b"", TRANSIENT),
        (200, b"[0]", TRANSIENT),
        (200, b"\xff\xfe", TRANSIENT),
        (500, b"boom", TRANSIENT),
        (502, b"", TRANSIENT),
        (503, b"busy", TRANSIENT),
        (504, b"", TRANSIENT),
        (408, b"", TRANSIENT),
        (429, b"slow down", TRANSIENT),
        (400, b'{"error": "bad phone"}', PERMANENT),
        (401, b"", PERMANENT),
        (403, b"", PERMANENT),
        (404, b"", PERMANENT),
        (422, b"", PERMANENT),
        (204, b"", TRANSIENT),
        (302, b"", TRANSIENT),
    ],
)
def test_http_reply_is_classified_by_status_and_body(status, body, kind):
    assert classify_http(status, body).kind == kind


def test_malformed_success_reply_says_so():
    assert classify_http(200, b"<html>").error == "malformed reply"


def test_permanent_error_carries_status_and_body_excerpt():
    result = classify_http(400, b"x" * 500)

    assert result.error == "HTTP 400: " + "x" * 200


def test_sent_result_has_no_error():
    assert classify_http(200, OK).error is None


@pytest.mark.parametrize("helper", [connection_failed, timed_out])
def test_connection_trouble_is_transient(helper):
    result = helper(ConnectionRefusedError("refused"))

    assert result.kind == TRANSIENT
    assert "refused" in result.error


def test_a_429_is_throttled_and_carries_its_retry_after_seconds() -> None:
    result = classify_http(429, b"slow down", "12")
    assert result.kind == TRANSIENT
    assert result.retry_after_s == 12.0
    assert result.error is not None and result.error.startswith("throttled: HTTP 429")


def test_retry_after_as_an_http_date_is_read_against_now() -> None:
    now = 1_790_000_000.0  # 2026-09-21T14:13:20Z
    result = classify_http(429, b"", "Mon, 21 Sep 2026 14:14:00 GMT", now=now)
    assert result.retry_after_s == 40.0


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "Mon, 99 Foo 2026"])
def test_a_throttled_reply_without_a_usable_retry_after_keeps_the_tiers(header) -> None:
    assert classify_http(429, b"", header).retry_after_s is None


def test_a_configured_reply_code_means_throttled_whatever_the_status() -> None:
    body = b'{"code": 42, "message": "rate exceeded"}'
    result = classify_http(200, body, "3", throttle_codes=frozenset({42}))
    assert result.kind == TRANSIENT
    assert result.retry_after_s == 3.0
    assert result.error is not None and result.error.startswith("throttled")
    # Without the setting the same reply is only a malformed success.
    assert classify_http(200, body, "3").retry_after_s is None
