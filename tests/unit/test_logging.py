"""JSON log lines: the fields operators search by, the correlation id, secrets masked."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from shared.config import Settings
from shared.logging import JsonFormatter, correlation_id, masked_forms, secrets_of


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {"name": "services.sender.worker", "levelno": logging.INFO, "levelname": "INFO"}
    )
    rec.msg, rec.args = message, args
    rec.__dict__.update(extra)
    return rec


def test_a_line_is_one_json_object_with_timestamp_level_service_and_context():
    formatter = JsonFormatter("sender")

    line = formatter.format(record("batch of %d done", 100, campaign_id=7))

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "info"
    assert entry["service"] == "sender"
    assert entry["logger"] == "services.sender.worker"
    assert entry["message"] == "batch of 100 done"
    assert entry["campaign_id"] == 7
    assert entry["timestamp"].endswith("+00:00")


def test_the_correlation_id_in_context_goes_on_every_line_while_it_is_set():
    formatter = JsonFormatter("stats")

    token = correlation_id.set("req-123")
    try:
        inside = json.loads(formatter.format(record("applied")))
    finally:
        correlation_id.reset(token)
    outside = json.loads(formatter.format(record("applied")))

    assert inside["correlation_id"] == "req-123"
    assert "correlation_id" not in outside


def test_an_exception_is_kept_in_the_same_line():
    formatter = JsonFormatter("api")
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed")
        rec.exc_info = sys.exc_info()

    entry = json.loads(formatter.format(rec))

    assert "ValueError: boom" in entry["exc"]


@pytest.mark.parametrize(
    "message",
    [
        "connecting to amqp://herald:S3cr%2Ft-pass@rabbit/",
        "token S3cr/t-pass refused",
        'payload {"password": "S3cr/t-pass"}',
    ],
)
def test_secrets_are_masked_written_plainly_url_encoded_or_json_escaped(message):
    formatter = JsonFormatter("api", secrets=["S3cr/t-pass"])

    line = formatter.format(record(message))

    assert "S3cr" not in line
    assert "***" in line


def test_short_values_are_not_treated_as_secrets():
    assert masked_forms(["abc", ""]) == ()


def test_secrets_of_settings_finds_url_passwords_tokens_and_keys():
    settings = Settings.from_env(
        {
            "HERALD_DATABASE_URL": "postgresql://herald:db-pass%40word@db/herald",
            "HERALD_AMQP_URL": "amqp://herald:amqp-password@mq/%2F",
            "HERALD_API_TOKENS": "write-token-1:write,read-token-2:read",
            "HERALD_GATEWAY_TOKEN": "gateway-token",
            "HERALD_SMTP_PASSWORD": "smtp-password",
        },
        env_file=Path("/nonexistent"),
    )

    found = set(secrets_of(settings))

    assert {
        "db-pass@word",
        "amqp-password",
        "write-token-1",
        "read-token-2",
        "gateway-token",
        "smtp-password",
    } <= found
