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
